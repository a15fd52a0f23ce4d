/**
 * The mini-program's rules for Live Photos and motion photos, without a Tubei server:
 * the MOV half of a Live Photo left out of the grid while its still is loaded (and a
 * video again when it is not), the LIVE / 动态 badge, a tap playing the signed video
 * in previewMedia, 查看照片 showing the still, and an older server's still a photo —
 * against a plain HTTP stand-in that lists the images and serves the files.
 * @jest-environment jsdom
 */
const fs = require('fs')
const http = require('http')
const os = require('os')
const path = require('path')
const {createKit} = require('./kit/wx')
const {makeVideos} = require('./kit/server')
const {loadPage, until} = require('./kit/pages')

let kit
let tmp
let stub
let base
let clip
let listing = []
const seen = []

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-live-rules-'))
  kit = createKit({tmpDir: tmp})
  global.wx = kit.wx
  ;[clip] = makeVideos(tmp, [{name: 'live.mp4', seconds: 1}])
  stub = http.createServer((req, res) => {
    seen.push({url: req.url, authorization: req.headers.authorization})
    if (req.url.startsWith('/api/v1/images?')) {
      res.writeHead(200, {'Content-Type': 'application/json'})
      return res.end(JSON.stringify({items: listing, next_cursor: null}))
    }
    // The signed files: served without a token, as the server's signed URLs are.
    res.writeHead(200, {'Content-Type': 'video/mp4', 'Content-Length': fs.statSync(clip.path).size})
    fs.createReadStream(clip.path).pipe(res)
  })
  await new Promise(resolve => stub.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${stub.address().port}`
  kit.wx.setStorageSync('tubei.server', base)
  kit.wx.setStorageSync('tubei.token', 'kit-token')
})

afterAll(async () => {
  stub.closeAllConnections()
  await new Promise(resolve => stub.close(resolve))
  fs.rmSync(tmp, {recursive: true, force: true})
})

const video = () => require('../../miniprogram/utils/video')
const signed = (id, extra) => Object.assign({thumbnail: `/s/${id}/thumb?signature=s`, preview: `/s/${id}/preview?signature=s`,
  original: `/s/${id}/original?signature=s`, video_preview: null, motion_video: null, live_video: null, expires_in: 3600}, extra)
const image = (id, kind, extra = {}, urls = {}) => Object.assign({id: id.repeat(64), filename: `${id}.jpg`, kind,
  mime: 'image/jpeg', size: 1000, live_still: null, urls: {original: `/o/${id}`, thumbnail: `/t/${id}`},
  signed_urls: signed(id, urls)}, extra)
const still = image('a', 'live', {}, {live_video: '/s/m/original?signature=live'})
const mov = image('m', 'video', {mime: 'video/quicktime', codec: 'h264', duration: 2, live_still: still.id})
const loneMov = image('n', 'video', {mime: 'video/quicktime', codec: 'h264', duration: 2, live_still: 'z'.repeat(64)})
const motion = image('b', 'motion', {}, {motion_video: '/s/b/video?variant=motion&signature=mv'})
const photo = image('c', 'photo')

test('the MOV half is hidden while its still is loaded, a video of its own when not', () => {
  const {hideLiveHalves} = video()
  const cells = [{id: 'S'}, {id: 'M', liveStill: 'S'}, {id: 'N', liveStill: 'X'}, {id: 'V', liveStill: ''}]
  expect(hideLiveHalves(cells).map(c => Boolean(c.hidden))).toEqual([false, true, false, false])
  expect(hideLiveHalves(cells.slice(1)).map(c => Boolean(c.hidden))).toEqual([false, false, false]) // still gone
})

test('the badge and the video a tap plays: LIVE, 动态, or none (an older server, a plain photo)', () => {
  const {stillVideo} = video()
  expect(stillVideo(still)).toEqual({badge: 'LIVE', url: `${base}/s/m/original?signature=live`})
  expect(stillVideo(motion)).toEqual({badge: '动态', url: `${base}/s/b/video?variant=motion&signature=mv`})
  expect(stillVideo(photo)).toBeNull()
  expect(stillVideo({kind: 'live', signed_urls: {}})).toBeNull()
  expect(stillVideo({id: 'old', urls: {}})).toBeNull() // no kind at all
})

test('the gallery: one cell for the pair, badges, a tap plays the signed video, 查看照片 the still', async () => {
  kit.privacy.agreed = true
  listing = [still, mov, loneMov, motion, photo]
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  await until(() => gallery.data.done, {what: 'the listing'})
  const cells = gallery.querySelectorAll('.grid__cell')
  expect(cells).toHaveLength(4) // the paired MOV left out
  expect(gallery.data.shown).toBe(4)
  expect(gallery.data.images).toHaveLength(5)
  expect(gallery.data.images.find(i => i.id === mov.id).hidden).toBe(true)
  expect(gallery.data.images.find(i => i.id === loneMov.id).hidden).toBeFalsy()
  expect(gallery.querySelectorAll('.grid__live').map(n => n.dom.textContent.trim())).toEqual(['LIVE', '动态'])
  expect(gallery.querySelectorAll('.grid__duration')).toHaveLength(1) // the lone MOV
  expect(gallery.querySelector('.weui-loadmore__tips').dom.textContent).toContain('共 4 张')

  cells[0].dispatchEvent('tap') // the Live Photo
  let played = await until(() => kit.lastCall('previewMedia'), {what: 'previewMedia'})
  expect(played.sources).toEqual([{url: `${base}/s/m/original?signature=live`, type: 'video',
    poster: `${base}/s/a/preview?signature=s`}])
  await until(() => played.shown !== null, {what: 'the video loaded'})
  expect(played.shown).toBe(true)
  expect(seen.filter(s => s.url === '/s/m/original?signature=live').every(s => !s.authorization)).toBe(true)

  kit.log.length = 0
  await gallery.instance.playStill(gallery.data.images.find(i => i.id === motion.id))
  played = kit.lastCall('previewMedia')
  expect(played.sources[0]).toMatchObject({url: `${base}/s/b/video?variant=motion&signature=mv`, type: 'video'})

  // The long-press menu's 查看照片: the still in previewImage, with the other photos.
  kit.ui.actionSheet = 0
  cells[0].dispatchEvent('longpress')
  expect((await until(() => kit.lastCall('showActionSheet'), {what: 'the menu'})).itemList).toEqual(['查看照片', '保存原图到相册', '删除'])
  const preview = await until(() => kit.lastCall('previewImage'), {what: 'previewImage'})
  expect(preview.current).toBe(`${base}/s/a/preview?signature=s`)
  expect(preview.urls).toHaveLength(3) // the two stills and the photo, no video

  // Deleting the still from the gallery deletes only the still: its MOV shows again.
  gallery.instance.removed(still.id)
  expect(gallery.data.images.find(i => i.id === mov.id).hidden).toBe(false)
  expect(gallery.data.shown).toBe(4)
  gallery.instance.onUnload()
})

test('an older server without kind or the new URLs: stills stay photos, every video shown', async () => {
  const old = i => {
    const copy = JSON.parse(JSON.stringify(i))
    delete copy.kind
    delete copy.live_still
    if (i.kind === 'video') copy.kind = 'video'
    delete copy.signed_urls.live_video
    delete copy.signed_urls.motion_video
    return copy
  }
  listing = [still, mov, motion].map(old)
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  await until(() => gallery.data.done, {what: 'the listing'})
  expect(gallery.querySelectorAll('.grid__cell')).toHaveLength(3)
  expect(gallery.querySelectorAll('.grid__live')).toHaveLength(0)
  kit.log.length = 0
  gallery.querySelectorAll('.grid__cell')[0].dispatchEvent('tap')
  const preview = await until(() => kit.lastCall('previewImage'), {what: 'previewImage'})
  expect(preview.current).toBe(`${base}/s/a/preview?signature=s`)
  expect(kit.lastCall('previewMedia')).toBeFalsy()
  gallery.instance.onUnload()
})
