/**
 * Honest originals and restarts, against a real server: album picks named from their
 * EXIF or pick time and marked when they arrive without EXIF, chat files backed up
 * under their own names, a restart that lost its temp files asking for the photo
 * again, and the gallery's thumbnails kept between sessions.
 * @jest-environment jsdom
 */
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const {pairedSession} = require('./kit/session')
const {makePhotos} = require('./kit/server')
const {ROOT} = require('./kit/pages')

const session = pairedSession('tubei-originals-')
let pages = require('./kit/pages')

beforeAll(() => {
  session.kit.privacy.agreed = true
  session.kit.launch(path.join(ROOT, 'app.js'))
})

function serverItems() {
  const {kit, server} = session
  return new Promise(resolve => kit.wx.request({
    url: `${server.url}/api/v1/images?limit=200`,
    header: {Authorization: `Bearer ${kit.wx.getStorageSync('tubei.token')}`},
    success: ({data}) => resolve(data.items),
  }))
}

const sha = file => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')

function openBackup() {
  const page = pages.loadPage('backup')
  page.instance.onLoad()
  page.instance.onShow()
  return page
}

test('album picks are named IMG_<time>, and one that lost its EXIF is marked', async () => {
  const {kit, tmp} = session
  const [camera, copied] = makePhotos(tmp, [
    {name: 'cam.jpg', width: 320, height: 240, seed: 71, taken: '2023:07:14 18:30:05'},
    {name: 'cam2.jpg', width: 320, height: 240, seed: 72, taken: '2023:07:15 09:00:00'},
  ])
  const page = openBackup()
  kit.media = [camera]
  await page.instance.choose()
  kit.ui.stripExif = true // this time the phone hands over a copy without EXIF
  kit.media = [copied]
  await page.instance.choose()
  kit.ui.stripExif = false
  expect(page.data.items.map(i => i.state)).toEqual(['done', 'done'])
  expect(page.data.items.map(i => i.suspect)).toEqual([false, true])
  expect(pages.text(page, '.item__suspect')).toBe('可能不是原图')

  const items = await serverItems()
  const byName = Object.fromEntries(items.map(i => [i.filename, i]))
  expect(byName['IMG_20230714_183005.jpg'].exif).toBe(true) // the EXIF time names it
  const stripped = items.find(i => i.filename !== 'IMG_20230714_183005.jpg')
  expect(stripped.filename).toMatch(/^IMG_\d{8}_\d{6}\.jpg$/) // the pick time: no EXIF to read
  expect(stripped.exif).toBe(false)
  expect(items.some(i => i.filename.startsWith('tmp_'))).toBe(false)
  page.instance.onUnload()
})

test('a chat-file backup keeps the files and their names', async () => {
  const {kit, tmp} = session
  const [sea, plain] = makePhotos(tmp, [
    {name: 'chat-a.jpg', width: 320, height: 240, seed: 81, taken: '2022:01:02 03:04:05'},
    {name: 'chat-b.jpg', width: 320, height: 240, seed: 82},
  ])
  const notes = path.join(tmp, 'notes.txt')
  fs.writeFileSync(notes, 'not a photo')
  kit.chatFiles = [{path: sea.path, name: '海边日落.jpg'}, {path: plain.path, name: 'IMG_0042.JPG'},
    {path: notes, name: '会议记录.txt'}]
  const page = openBackup()
  page.querySelector('.btn-chat').dispatchEvent('tap')
  await pages.until(() => page.data.items.length === 2 && page.data.items.every(i => i.state === 'done'),
    {what: 'chat files backed up'})
  expect(kit.lastCall('chooseMessageFile').options).toMatchObject({count: 100, type: 'all'})
  expect(page.data.notice).toBe('1 个文件不是照片或视频，没有备份。')
  expect(page.data.items.map(i => i.suspect)).toEqual([false, false]) // byte-exact files

  const items = await serverItems()
  const sea1 = items.find(i => i.id === sha(sea.path))
  const plain1 = items.find(i => i.id === sha(plain.path))
  expect([sea1.filename, plain1.filename]).toEqual(['海边日落.jpg', 'IMG_0042.JPG'])
  expect([sea1.exif, plain1.exif]).toEqual([true, false])
  page.instance.onUnload()

  // The gallery marks only the album pick that lost its EXIF, not a chat file without any.
  const gallery = pages.loadPage('gallery')
  await gallery.instance.onLoad()
  const marked = gallery.data.images.filter(i => i.suspect).map(i => i.name)
  expect(marked).toHaveLength(1)
  expect(marked[0]).toMatch(/^IMG_\d{8}_\d{6}\.jpg$/)
  expect(gallery.querySelectorAll('.grid__suspect')).toHaveLength(1)
  gallery.instance.onUnload()
})

// An older server's answers: no signed URLs in its images.
function asAnOlderServer(kit) {
  kit.rewriteAnswer = (url, text) => {
    if (!/\/api\/v1\/(images|trash|events)/.test(url)) return text
    const strip = image => { if (image) delete image.signed_urls }
    const body = JSON.parse(text)
    if (Array.isArray(body.items)) body.items.forEach(strip)
    strip(body.image) // an event's
    if (body && body.id) strip(body)
    return JSON.stringify(body)
  }
}

test('with an older server, the gallery keeps thumbnails between sessions and previews swipe through it', async () => {
  const {kit} = session
  asAnOlderServer(kit)
  const thumbcache = require('../../miniprogram/utils/thumbcache')
  const gallery = pages.loadPage('gallery')
  await gallery.instance.onLoad()
  const cached = i => i.thumb.startsWith(`${kit.wx.env.USER_DATA_PATH}/thumbs/`)
  // The gallery shows the list first and fetches the thumbnails after it; a busy server
  // makes them later than onLoad.
  await pages.until(() => gallery.data.images.length >= 4 && gallery.data.images.every(cached),
    {what: 'every thumbnail downloaded to the cache'})
  const images = gallery.data.images
  images.forEach(i => expect(cached(i)).toBe(true))

  const downloads = () => kit.log.filter(e => e.api === 'downloadFile').length
  const before = downloads()
  const beforeLog = kit.log.length
  gallery.querySelectorAll('.grid__cell')[2].dispatchEvent('tap')
  const preview = await pages.until(() => kit.lastCall('previewImage'), {what: 'preview'})
  expect(preview.urls).toHaveLength(images.length) // the whole gallery, to swipe through
  expect(preview.urls.indexOf(preview.current)).toBe(2)
  expect(downloads() - before).toBeLessThanOrEqual(5) // the tapped one and its neighbours
  const fetched = kit.log.slice(beforeLog).filter(e => e.api === 'downloadFile').map(e => e.url)
  expect(fetched.every(url => url.endsWith('/thumbnail?size=preview'))).toBe(true)
  expect(preview.current).not.toBe(images[2].thumb) // the preview size, not the grid's
  gallery.instance.onUnload()

  // Next session: the thumbnails come from the user data folder, not the network.
  thumbcache.reset()
  const again = pages.loadPage('gallery')
  const quiet = downloads()
  await again.instance.onLoad()
  expect(downloads()).toBe(quiet)
  expect(again.data.images.every(i => i.thumb && fs.existsSync(i.thumb))).toBe(true)
  again.instance.onUnload()

  // Over its budget the cache drops the least recently shown first.
  thumbcache.reset() // the index stored as it is now (it is saved a second after use)
  const total = thumbcache.total()
  const oldest = kit.wx.getStorageSync(thumbcache.KEY)[0][0]
  thumbcache.setBudget(total - 1)
  expect(thumbcache.total()).toBeLessThan(total)
  expect(fs.existsSync(`${kit.wx.env.USER_DATA_PATH}/thumbs/${oldest}`)).toBe(false)
  expect(kit.wx.getStorageSync(thumbcache.KEY).map(([name]) => name)).not.toContain(oldest)
  thumbcache.setBudget(100 * thumbcache.MB)
  kit.rewriteAnswer = null
})

test('a signed thumbnail that no longer loads is asked for again, and the preview is refreshed first', async () => {
  const {kit} = session
  kit.rewriteAnswer = null // whatever the test before left
  const gallery = pages.loadPage('gallery')
  await gallery.instance.onLoad()
  const images = gallery.data.images
  expect(images.every(i => i.media && i.thumb === i.media.thumbnail)).toBe(true)
  // The first one's URL as it is after its expiry: the server refuses it (403).
  const stale = images[0].thumb.replace(/expires=(\d+)/, (m, e) => `expires=${Number(e) - 3600}`)
  gallery.setData({'images[0].thumb': stale})
  const first = await kit.images.showPage(gallery, 'pages/gallery/gallery', 'grid__img')
  expect(first[0]).toMatchObject({ok: false, status: 403})
  await pages.until(() => gallery.data.images[0].thumb !== stale, {what: 'fresh URLs'})
  const again = await kit.images.showPage(gallery, 'pages/gallery/gallery', 'grid__img')
  expect(again.every(r => r.ok)).toBe(true)

  // A preview whose URLs have run out (the mini-program left open for hours) asks for
  // fresh ones for the tapped photo and its neighbours before opening.
  gallery.setData({'images[2].media.until': Date.now() - 1})
  const requests = kit.log.filter(e => e.api === 'request').length
  gallery.querySelectorAll('.grid__cell')[2].dispatchEvent('tap')
  const preview = await pages.until(() => kit.lastCall('previewImage'), {what: 'preview'})
  await pages.until(() => preview.shown !== null, {what: 'the preview shown'})
  expect(preview.shown).toBe(true)
  const asked = kit.log.filter(e => e.api === 'request').slice(requests).map(e => e.url)
  expect(asked).toEqual([`${session.server.url}/api/v1/images/${images[2].id}`])
  expect(preview.urls.indexOf(preview.current)).toBe(2)
  gallery.instance.onUnload()
})

test('a restart with its temp files gone asks for the photo again and loses nothing', async () => {
  const {kit, tmp} = session
  const [big, small] = makePhotos(tmp, [
    {name: 'restart-big.jpg', width: 1000, height: 800, seed: 91},
    {name: 'restart-small.jpg', width: 200, height: 150, seed: 92},
  ])
  const size = fs.statSync(big.path).size
  const first = openBackup()
  Object.assign(first.instance.uploader, {threshold: 512 * 1024, chunkSize: 128 * 1024})
  expect(size).toBeGreaterThan(512 * 1024)
  kit.uplink = 1024 * 1024 // slow enough to be caught mid-way
  kit.media = [big, small]
  first.instance.choose()
  await pages.until(() => {
    const [b, s] = first.data.items
    return b && s && s.state === 'done' && b.state === 'uploading' && b.progress >= 25
  }, {what: 'the large photo mid-way'})
  kit.uplink = null

  // WeChat kills the mini-program; on the next start its temp files are gone.
  require('../../miniprogram/utils/events').close()
  first.instance.onUnload()
  kit.restart()
  jest.resetModules()
  pages = require('./kit/pages')
  kit.launch(path.join(ROOT, 'app.js'))
  const before = kit.log.length

  const second = openBackup()
  await pages.until(() => second.data.items.length === 1, {what: 'the pending upload'})
  const [asked] = second.data.items
  expect(asked.state).toBe('missing')
  const shown = size >= 1024 * 1024 ? `${(size / 1024 / 1024).toFixed(1)} MB` : `${Math.round(size / 1024)} KB`
  expect(pages.text(second, '.item_missing')).toBe(`请重新选择${shown}`) // with its size
  expect(asked.thumb.startsWith(`${kit.wx.env.USER_DATA_PATH}/pending/`)).toBe(true)
  expect(fs.existsSync(asked.thumb)).toBe(true) // a small copy kept in the user data folder
  expect(fs.statSync(asked.thumb).size).toBeLessThan(size / 4)
  expect(second.data.summary).toBe('1 张需重新选择')

  kit.media = [big] // the person picks the same photo from the album
  second.querySelector('.item_missing').dispatchEvent('tap')
  await pages.until(() => second.data.items[0].state === 'done', {what: 'resumed'})

  const calls = kit.log.slice(before).filter(e => e.api === 'request')
  expect(calls.some(c => c.method === 'POST' && c.url.endsWith('/api/v1/uploads/'))).toBe(false) // resumed
  const patches = calls.filter(c => c.header && c.header['X-HTTP-Method-Override'] === 'PATCH')
  expect(Number(patches[0].header['Upload-Offset'])).toBeGreaterThan(0)
  expect(kit.wx.getStorageSync('tubei.tus')).toEqual({})
  expect(fs.existsSync(asked.thumb)).toBe(false) // the pending thumbnail is cleaned up
  const ids = (await serverItems()).map(i => i.id)
  expect(ids).toEqual(expect.arrayContaining([sha(big.path), sha(small.path)]))
  second.instance.onUnload()
})
