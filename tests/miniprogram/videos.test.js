/**
 * Videos, picked with photos and backed up to a real server: a 150 MB MP4 goes up by
 * tus in chunks read through a file descriptor (readFile refuses a file that big),
 * its cell shows its length, previewMedia plays the signed original without the
 * token, and it is saved back to the album. Then a small HEVC MOV the phone may not
 * play, and a video whose upload a kill cut short.
 * @jest-environment jsdom
 */
const crypto = require('crypto')
const fs = require('fs')
const {pairedSession} = require('./kit/session')
const {makePhotos, makeVideos} = require('./kit/server')
const {loadPage, recordRenders, until, text} = require('./kit/pages')

const session = pairedSession('tubei-videos-')
const MB = 1024 * 1024

function sha256(file) {
  return new Promise(resolve => {
    const hash = crypto.createHash('sha256')
    fs.createReadStream(file).on('data', c => hash.update(c)).on('end', () => resolve(hash.digest('hex')))
  })
}

function getImage(kit, server, id) {
  return new Promise(resolve => kit.wx.request({
    url: `${server.url}/api/v1/images/${id}`,
    header: {Authorization: `Bearer ${kit.wx.getStorageSync('tubei.token')}`},
    success: res => resolve(res),
  }))
}

const settled = i => ['done', 'exists', 'failed'].includes(i.state)

test('a mix of photos and a 150 MB video: backed up with progress, shown with its length, played, saved', async () => {
  const {kit, server, tmp} = session
  const photos = makePhotos(tmp, [{name: 'a.jpg', width: 320, height: 240}, {name: 'b.jpg', width: 320, height: 240}])
  const [big] = makeVideos(tmp, [{name: 'big.mp4', seconds: 3, size: 150 * MB}])
  expect(fs.statSync(big.path).size).toBe(150 * MB)
  const sha = await sha256(big.path)

  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  const renders = recordRenders(backup, page => {
    const item = page.data.items.find(i => i.video)
    return item && item.state === 'uploading' ? item.progress : null
  })
  kit.media = [photos[0], big, photos[1]]
  backup.querySelector('.btn-choose').dispatchEvent('tap')
  await until(() => backup.data.items.length === 3 && backup.data.items.every(settled), {what: 'settled', timeout: 120000})
  expect(backup.data.items.map(i => i.state)).toEqual(['done', 'done', 'done'])
  expect(backup.data.summary).toBe('3 项已备份') // 张 counts photos only

  // Picked as mix, originals; the video kept its type, size and length.
  expect(kit.lastCall('chooseMedia').options).toMatchObject({mediaType: ['mix'], sizeType: ['original']})
  const item = backup.instance.uploader.items[1]
  expect(item).toMatchObject({kind: 'video', size: 150 * MB, duration: 3})
  expect(item.name).toMatch(/^VID_\d{8}_\d{6}\.mp4$/)
  expect(text(backup, '.item__duration')).toBe('0:03')

  // Never a single uploadFile for it; tus chunks read with open/read, never readFile.
  const uploads = kit.log.filter(e => e.api === 'uploadFile')
  expect(uploads).toHaveLength(2) // the two photos
  const videoPath = item.path
  expect(uploads.some(u => u.filePath === videoPath)).toBe(false)
  expect(kit.log.some(e => e.api === 'open' && e.filePath === videoPath)).toBe(true)
  const reads = kit.log.filter(e => e.api === 'read')
  expect(reads.length).toBeGreaterThanOrEqual(38) // 150 MB in 4 MB chunks
  expect(Math.max(...reads.map(r => r.length))).toBeLessThanOrEqual(4 * MB)
  expect(kit.files.openFds()).toBe(0) // closed again
  // Its progress rose, one chunk at a time.
  const progress = renders.filter(p => typeof p === 'number')
  expect(progress.filter(p => p > 0 && p < 100).length).toBeGreaterThan(5)
  expect(progress).toEqual([...progress].sort((a, b) => a - b))

  const stored = await getImage(kit, server, sha)
  expect(stored.statusCode).toBe(200)
  expect(stored.data).toMatchObject({kind: 'video', codec: 'h264', size: 150 * MB})
  backup.instance.onUnload()

  // The gallery: the poster as its thumbnail (signed, no token), the length on it.
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const at = gallery.data.images.findIndex(i => i.id === sha)
  expect(at).toBeGreaterThanOrEqual(0)
  const cell = gallery.data.images[at]
  expect(cell).toMatchObject({video: true, duration: '0:03', unplayable: false})
  expect(gallery.querySelectorAll('.grid__duration').map(n => n.dom.textContent.trim())).toEqual(['0:03'])
  const shown = await kit.images.showPage(gallery, 'pages/gallery/gallery', 'grid__img')
  expect(shown.every(r => r.ok)).toBe(true)

  // A tap plays it: previewMedia with the signed original, the player fetching it
  // without any header, and the poster.
  gallery.querySelectorAll('.grid__cell')[at].dispatchEvent('tap')
  const played = await until(() => kit.lastCall('previewMedia'), {what: 'previewMedia'})
  await until(() => played.shown !== null, {what: 'the video loaded'})
  expect(played.sources).toEqual([{url: cell.media.original, type: 'video', poster: cell.media.preview}])
  expect(played.sources[0].url).toMatch(/signature=/)
  expect(played.sources[0].url).not.toContain(kit.wx.getStorageSync('tubei.token'))
  expect(played).toMatchObject({shown: true, type: 'video/mp4', posterShown: true})
  expect([200, 206]).toContain(played.status)
  expect(played.head.toString('latin1', 4, 8)).toBe('ftyp')
  // previewImage, for photos, leaves the video out.
  gallery.querySelectorAll('.grid__cell')[at === 0 ? 1 : 0].dispatchEvent('tap')
  const photoPreview = await until(() => kit.lastCall('previewImage'), {what: 'previewImage'})
  expect(photoPreview.urls).toHaveLength(gallery.data.images.length - 1)

  // Save: downloaded with the token, with progress, then into the album.
  kit.ui.authSetting['scope.writePhotosAlbum'] = true
  kit.ui.actionSheet = 0
  const saving = recordRenders(gallery, page => page.data.saving)
  gallery.querySelectorAll('.grid__cell')[at].dispatchEvent('longpress')
  await until(() => kit.videoAlbum.length === 1, {what: 'saved', timeout: 60000})
  expect(kit.lastCall('showActionSheet').itemList[0]).toBe('保存视频到相册')
  expect(kit.videoAlbum[0]).toEqual({sha256: sha, size: 150 * MB})
  const download = kit.lastCall('downloadFile')
  expect(download.header.Authorization).toMatch(/^Bearer /)
  expect(saving.some(p => p > 0 && p < 100)).toBe(true)
  await until(() => gallery.data.saving === -1, {what: 'overlay gone'})
  expect(kit.lastCall('showToast').title).toBe('已保存到相册')
  gallery.instance.onUnload()
}, 240000)

test('an HEVC MOV goes by tus however small, is said to be maybe unplayable, and is saved as .mp4', async () => {
  const {kit, server, tmp} = session
  const [mov] = makeVideos(tmp, [{name: 'clip.mov', seconds: 2, codec: 'libx265', seed: 5}])
  const sha = await sha256(mov.path)
  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  const before = kit.log.length
  kit.media = [mov]
  await backup.instance.choose()
  expect(backup.data.items[0].state).toBe('done')
  const calls = kit.log.slice(before)
  expect(calls.some(e => e.api === 'uploadFile')).toBe(false)
  expect(calls.some(e => e.api === 'request' && e.url.endsWith('/api/v1/uploads/'))).toBe(true)
  expect((await getImage(kit, server, sha)).data).toMatchObject({kind: 'video', codec: 'hevc', mime: 'video/quicktime'})
  backup.instance.onUnload()

  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const at = gallery.data.images.findIndex(i => i.id === sha)
  expect(gallery.data.images[at]).toMatchObject({video: true, duration: '0:02', unplayable: true})
  expect(gallery.querySelectorAll('.grid__unplayable')).toHaveLength(1)

  // Asked first; declined, nothing plays; confirmed, the original plays.
  const plays = kit.log.filter(e => e.api === 'previewMedia').length
  kit.ui.modalConfirm = false
  expect(await gallery.instance.play(gallery.data.images[at])).toBe(false)
  expect(kit.lastCall('showModal')).toMatchObject({title: '可能无法播放'})
  expect(kit.lastCall('showModal').content).toContain('HEVC')
  expect(kit.log.filter(e => e.api === 'previewMedia')).toHaveLength(plays)
  kit.ui.modalConfirm = true
  expect(await gallery.instance.play(gallery.data.images[at])).toBe(true)
  const played = kit.lastCall('previewMedia')
  await until(() => played.shown !== null, {what: 'the video loaded'})
  expect(played).toMatchObject({shown: true, type: 'video/quicktime'})

  // Saved through an .mp4 name in the user data folder, removed afterwards.
  kit.ui.authSetting['scope.writePhotosAlbum'] = true
  const saved = kit.videoAlbum.length
  expect(await gallery.instance.save(gallery.data.images[at])).toBe(true)
  expect(kit.videoAlbum[saved].sha256).toBe(sha)
  const saveCall = kit.lastCall('saveVideoToPhotosAlbum')
  expect(saveCall.filePath.startsWith(kit.wx.env.USER_DATA_PATH)).toBe(true)
  expect(saveCall.filePath.endsWith('.mp4')).toBe(true)
  expect(fs.existsSync(saveCall.filePath)).toBe(false)
  gallery.instance.onUnload()
})

test('a video cut short by a kill shows its poster, and picking it again resumes it', async () => {
  const {kit, server, tmp} = session
  const [clip] = makeVideos(tmp, [{name: 'cut.mp4', seconds: 2, size: 2 * MB, seed: 9}])
  const sha = await sha256(clip.path)
  let patches = 0
  kit.beforeRequest = ({header}) => {
    if (header['X-HTTP-Method-Override'] === 'PATCH' && ++patches === 3) kit.setOnline(false)
  }
  const first = loadPage('backup')
  first.instance.onLoad()
  first.instance.onShow()
  first.instance.uploader.chunkSize = 256 * 1024
  kit.media = [clip]
  await first.instance.choose()
  expect(first.data.items[0].state).toBe('failed')
  first.instance.onUnload()
  kit.beforeRequest = null
  kit.setOnline(true)
  kit.restart() // killed: the temp copy of the video is gone

  const second = loadPage('backup')
  second.instance.onLoad()
  second.instance.onShow()
  await until(() => second.data.items.length === 1, {what: 'the missing video'})
  const missing = second.data.items[0]
  expect(missing).toMatchObject({state: 'missing', video: true, duration: '0:02'})
  expect(missing.thumb.startsWith(kit.wx.env.USER_DATA_PATH)).toBe(true) // its poster, kept
  expect(fs.existsSync(missing.thumb)).toBe(true)

  const before = kit.log.length
  kit.media = [clip]
  expect(await second.instance.repick({currentTarget: {dataset: {key: missing.key}}})).toBe(true)
  expect(kit.lastCall('chooseMedia').options.mediaType).toEqual(['video'])
  expect(second.data.items[0].state).toBe('done')
  const calls = kit.log.slice(before).filter(e => e.api === 'request')
  expect(calls.some(c => c.url.endsWith('/api/v1/uploads/'))).toBe(false) // not created again
  const sent = calls.filter(c => c.header && c.header['X-HTTP-Method-Override'] === 'PATCH')
  expect(Number(sent[0].header['Upload-Offset'])).toBeGreaterThan(0)
  expect((await getImage(kit, server, sha)).data).toMatchObject({kind: 'video', size: 2 * MB})
  second.instance.onUnload()
})
