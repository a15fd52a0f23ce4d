/**
 * The mini-program's rules for videos, without a Tubei server: the length badge, what
 * previewMedia plays (the original, or a phone-playable preview video the server may
 * add), what can be saved to the album — and the gallery saying so, or saving only a
 * preview and saying that, against a plain HTTP stand-in for the preview file.
 * @jest-environment jsdom
 */
const fs = require('fs')
const http = require('http')
const os = require('os')
const path = require('path')
const {createKit} = require('./kit/wx')
const {makeVideos} = require('./kit/server')
const {loadPage, until} = require('./kit/pages')

const MB = 1024 * 1024
let kit
let tmp
let stub
let base
let clip
const seen = []

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-video-rules-'))
  kit = createKit({tmpDir: tmp})
  global.wx = kit.wx
  ;[clip] = makeVideos(tmp, [{name: 'preview.mp4', seconds: 1}])
  stub = http.createServer((req, res) => {
    seen.push({url: req.url, authorization: req.headers.authorization})
    if (!req.headers.authorization) {
      res.writeHead(401, {'Content-Type': 'application/json'})
      return res.end('{"error": {"code": "unauthorized", "message": "token"}}')
    }
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
const webm = extra => Object.assign({id: 'f'.repeat(64), kind: 'video', codec: 'vp9', mime: 'video/webm', format: 'WEBM',
  size: 3 * MB, urls: {original: '/api/v1/images/fff/original'}, signed_urls: {}}, extra)

test('the badge reads m:ss, and h:mm:ss past an hour', () => {
  const {durationText} = video()
  expect([0, 3, 3.4, 59.6, 65, 600, 3723, null, undefined].map(durationText))
    .toEqual(['0:00', '0:03', '0:03', '1:00', '1:05', '10:00', '1:02:03', '0:00', '0:00'])
})

test('previewMedia plays the original if the phone can, else a preview video the server gives', () => {
  const {playback} = video()
  const media = {original: `${base}/o`, preview: `${base}/p`, thumbnail: `${base}/t`}
  expect(playback({codec: 'h264'}, media)).toEqual({url: `${base}/o`, poster: `${base}/p`, playable: true, note: ''})
  const hevc = playback({codec: 'hevc', signed_urls: {}}, media)
  expect(hevc).toMatchObject({url: `${base}/o`, playable: false})
  expect(hevc.note).toContain('HEVC')
  const withPreview = playback({codec: 'hevc', signed_urls: {video_preview: '/api/v1/images/x/video?variant=preview&signature=s'}}, media)
  expect(withPreview).toEqual({url: `${base}/api/v1/images/x/video?variant=preview&signature=s`, poster: `${base}/p`, playable: true, note: ''})
})

test('what can be saved: mp4 and MOV within 200 MB; else a preview video, else why not', () => {
  const {saveSource} = video()
  expect(saveSource(webm({mime: 'video/mp4'}))).toEqual({path: '/api/v1/images/fff/original', preview: false})
  expect(saveSource(webm({mime: 'video/quicktime'}))).toMatchObject({preview: false})
  expect(saveSource(webm()).why).toContain('WEBM')
  expect(saveSource(webm({mime: 'video/mp4', size: 201 * MB})).why).toContain('200 MB')
  expect(saveSource(webm({urls: {original: '/o', video_preview: '/pv.mp4'}}))).toEqual({path: '/pv.mp4', preview: true})
})

test('the gallery says why a WebM cannot be saved, and says so when only a preview was', async () => {
  kit.privacy.agreed = true
  kit.ui.authSetting['scope.writePhotosAlbum'] = true
  const gallery = loadPage('gallery')
  const cell = facts => ({id: facts.id, video: true, facts, urls: facts.urls})

  const downloads = kit.log.filter(e => e.api === 'downloadFile').length
  expect(await gallery.instance.save(cell(webm()))).toBe(false)
  expect(kit.lastCall('showModal')).toMatchObject({title: '无法保存到相册'})
  expect(kit.lastCall('showModal').content).toContain('WEBM')
  expect(kit.log.filter(e => e.api === 'downloadFile')).toHaveLength(downloads) // nothing fetched

  const withPreview = webm({urls: {original: '/o', video_preview: '/api/v1/images/fff/video?variant=preview'}})
  expect(await gallery.instance.save(cell(withPreview))).toBe(true)
  expect(seen.pop()).toEqual({url: '/api/v1/images/fff/video?variant=preview', authorization: 'Bearer kit-token'})
  expect(kit.videoAlbum).toHaveLength(1)
  expect(kit.videoAlbum[0].size).toBe(fs.statSync(clip.path).size)
  await until(() => kit.lastCall('showModal').title === '已保存预览版本', {what: 'the preview notice'})
  expect(kit.lastCall('showModal').content).toContain('原文件完整保存在服务器上')
  expect(kit.lastCall('saveVideoToPhotosAlbum').filePath.endsWith('.mp4')).toBe(true)
  expect(fs.existsSync(kit.lastCall('saveVideoToPhotosAlbum').filePath)).toBe(false) // removed after
})
