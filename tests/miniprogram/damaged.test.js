/**
 * A photo whose original was damaged on the server (found by `scrub`) is marked in
 * the gallery, is not offered for saving as if it were fine, and backing it up
 * again from the phone heals it.
 * @jest-environment jsdom
 */
const {execFileSync} = require('child_process')
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const {pairedSession} = require('./kit/session')
const {makePhotos, uploadDirect, PYTHON, ROOT} = require('./kit/server')
const {loadPage, until} = require('./kit/pages')

const session = pairedSession('tubei-damaged-')

function scrub() {
  try {
    execFileSync(PYTHON, ['-m', 'server', 'scrub', '--data', session.server.data], {cwd: ROOT, stdio: 'pipe'})
    return 0
  } catch (error) {
    return error.status
  }
}

test('damaged on the server: marked, not saved, healed by backing it up again', async () => {
  const {kit, server, tmp} = session
  const [photo] = makePhotos(tmp, [{name: 'IMG_ROT.jpg', width: 640, height: 480, seed: 5}])
  const sha = crypto.createHash('sha256').update(fs.readFileSync(photo.path)).digest('hex')
  await uploadDirect(server, kit.wx.getStorageSync('tubei.token'), photo.path)
  // Bit rot: one byte of the stored original flips.
  const blob = path.join(server.data, 'blobs', sha.slice(0, 2), sha.slice(2, 4), sha)
  const bytes = fs.readFileSync(blob)
  bytes[bytes.length >> 1] ^= 0xff
  fs.writeFileSync(blob, bytes)
  expect(scrub()).toBe(1)

  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const [shown] = gallery.data.images
  expect(shown.id).toBe(sha)
  expect(shown.damaged).toBe(true)
  expect(gallery.querySelector('.grid__damaged').dom.textContent).toBe('原图损坏')
  expect(await gallery.instance.save(shown)).toBe(false)
  expect(kit.lastCall('showToast').title).toBe('这张照片的原图已损坏，请从手机重新备份')
  expect(kit.log.some(e => e.api === 'saveImageToPhotosAlbum')).toBe(false)

  // The phone still has it: backing it up again puts the right bytes back.
  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  kit.media = [photo]
  await backup.instance.choose()
  expect(backup.data.items[0].state).toBe('done')
  expect(scrub()).toBe(0)
  expect(crypto.createHash('sha256').update(fs.readFileSync(blob)).digest('hex')).toBe(sha)
  await gallery.instance.reload()
  expect(gallery.data.images[0].damaged).toBe(false)
  gallery.instance.onUnload()
})
