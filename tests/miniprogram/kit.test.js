/**
 * The kit behaves like a phone: WeChat's URL policy, the background, the privacy
 * agreement, the limits on requests, sockets, readFile and storage, picks that lose
 * their EXIF, and temp files a restart removes. Refused addresses are never reached:
 * the kit refuses before any network use (kit.sent counts what it opened).
 * @jest-environment jsdom
 */
const fs = require('fs')
const http = require('http')
const os = require('os')
const path = require('path')
const WebSocket = require('ws')
const {createKit, MAX_TASKS, MAX_SOCKETS} = require('./kit/wx')
const {makePhone, refusal, stripExif} = require('./kit/phone')
const {makePhotos, makeVideos} = require('./kit/server')
const {LIMITS} = require('./kit/files')

let tmp
let stub
let base
let wss
let handle = (req, res) => res.end('{}')

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-kit-'))
  stub = http.createServer((req, res) => handle(req, res))
  wss = new WebSocket.Server({server: stub})
  await new Promise(resolve => stub.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${stub.address().port}`
})

afterAll(async () => {
  wss.close()
  stub.closeAllConnections()
  await new Promise(resolve => stub.close(resolve))
  fs.rmSync(tmp, {recursive: true, force: true})
})

function call(kit, api, options) {
  return new Promise(resolve => kit.wx[api](Object.assign({}, options, {
    success: res => resolve({ok: true, res}),
    fail: err => resolve({ok: false, err}),
  })))
}

const wait = ms => new Promise(r => setTimeout(r, ms))

test('URL policy: the same subnet over http, registered https domains, nothing else', async () => {
  const kit = createKit({tmpDir: tmp, phone: {domains: ['tubei.example.com', 'photos.example.org:8443']}})
  expect(kit.phone).toMatchObject({ip: '127.0.0.100', netmask: '255.0.0.0'})

  expect((await call(kit, 'request', {url: `${base}/ok`})).ok).toBe(true) // 127.0.0.1: same /8
  const before = kit.sent
  for (const url of ['http://10.0.3.5:8000/api/v1/health', 'http://192.168.1.5:8000/',
    'http://127.0.0.100:8000/' /* the phone itself */, 'http://tubei.example.com/',
    'https://tubei.example.com:443/', 'https://unknown.example.com/', 'https://localhost/']) {
    const {ok, err} = await call(kit, 'request', {url})
    expect(ok).toBe(false)
    expect(err.errMsg).toBe('request:fail url not in domain list')
  }
  const upload = await call(kit, 'uploadFile', {url: 'http://10.0.3.5:8000/x', filePath: __filename, name: 'f'})
  expect(upload.err.errMsg).toBe('uploadFile:fail url not in domain list')
  const download = await call(kit, 'downloadFile', {url: 'http://10.0.3.5:8000/x'})
  expect(download.err.errMsg).toBe('downloadFile:fail url not in domain list')
  const socket = kit.wx.connectSocket({url: 'ws://10.0.3.5:8000/'})
  const socketError = await new Promise(resolve => socket.onError(resolve))
  expect(socketError.errMsg).toBe('connectSocket:fail url not in domain list')
  expect(kit.sent).toBe(before) // nothing left the kit

  // The rules themselves, for what cannot be reached from here.
  const phone = kit.phone
  expect(refusal(phone, 'request', 'https://tubei.example.com/api')).toBeNull()
  expect(refusal(phone, 'socket', 'wss://tubei.example.com/api/v1/events')).toBeNull()
  expect(refusal(phone, 'socket', 'ws://tubei.example.com/')).toBe('url not in domain list')
  expect(refusal(phone, 'request', 'https://photos.example.org:8443/')).toBeNull()
  expect(refusal(phone, 'request', 'https://photos.example.org/')).toBe('url not in domain list')
  const home = makePhone({ip: '192.168.1.23', netmask: '255.255.255.0'})
  expect(refusal(home, 'request', 'http://192.168.1.5:8000/')).toBeNull()
  expect(refusal(home, 'request', 'http://192.168.2.5:8000/')).toBe('url not in domain list')
  expect(refusal(makePhone({ip: '10.18.0.7', netmask: '255.255.255.0'}), 'request', 'http://10.0.3.5/'))
    .toBe('url not in domain list')
})

test('the background: calls in flight fail `interrupted`, held until the return; sockets close', async () => {
  const kit = createKit({tmpDir: tmp, suspendAfter: 150, socketsCloseAfter: 300})
  expect(createKit({tmpDir: tmp}).state).toBe('front')
  handle = (req, res) => setTimeout(() => res.end('{}'), 2000) // slower than the suspension
  const app = {hidden: 0, shown: 0, onHide() { this.hidden += 1 }, onShow() { this.shown += 1 }}
  kit.app = app
  const socket = kit.wx.connectSocket({url: base.replace('http', 'ws')})
  await new Promise(resolve => socket.onOpen(resolve))
  const closed = new Promise(resolve => socket.onClose(resolve))
  let settled = null
  kit.wx.request({url: `${base}/slow`, fail: err => { settled = err }, success: () => { settled = 'ok' }})

  const suspended = kit.background()
  expect(app.hidden).toBe(1)
  expect(kit.state).toBe('background')
  await suspended
  expect(kit.state).toBe('suspended')
  expect(settled).toEqual({errMsg: 'request:fail interrupted'}) // told just before the stop
  let late = null
  kit.wx.request({url: `${base}/later`, fail: err => { late = err }}) // a call while suspended
  await wait(400) // the sockets are closed now too
  expect(kit.openSockets()).toBe(0)
  expect(late).toBeNull() // the JS thread is suspended: nothing is delivered
  kit.foreground()
  expect(app.shown).toBe(1)
  expect((await closed).reason).toBe('interrupted')
  await wait(20)
  expect(late).toEqual({errMsg: 'request:fail interrupted'})
  handle = (req, res) => res.end('{}')
  expect((await call(kit, 'request', {url: `${base}/again`})).ok).toBe(true)
})

test('the privacy agreement: undeclared is 112, refused is 104, agreed only by a real tap', async () => {
  const kit = createKit({tmpDir: tmp})
  const [photo] = makePhotos(tmp, [{name: 'privacy.jpg', width: 64, height: 48}])
  kit.privacy.declared.delete('chooseMessageFile')
  const undeclared = await call(kit, 'chooseMessageFile', {count: 1})
  expect(undeclared.err).toEqual({errMsg: 'chooseMessageFile:fail api scope is not declared in the privacy agreement', errno: 112})

  // WeChat's own popup when no listener is registered.
  kit.ui.privacy = 'disagree'
  expect((await call(kit, 'chooseMedia', {count: 1})).err).toEqual(
    {errMsg: 'chooseMedia:fail privacy permission is not authorized', errno: 104})

  const asked = []
  kit.wx.onNeedPrivacyAuthorization((resolve, info) => asked.push({resolve, info}))
  kit.media = [photo]
  const refused = call(kit, 'chooseMedia', {count: 1})
  await wait(10)
  expect(asked[0].info).toEqual({referrer: 'chooseMedia'})
  asked[0].resolve({event: 'exposureAuthorization'})
  asked[0].resolve({event: 'disagree'})
  expect((await refused).err.errno).toBe(104)

  // "agree" without the agree button tapped is not an agreement.
  const untapped = call(kit, 'chooseMedia', {count: 1})
  await wait(10)
  asked[1].resolve({event: 'agree', buttonId: 'agree-privacy'})
  expect((await untapped).err.errno).toBe(104)

  kit.privacy.tapped.add('agree-privacy')
  const agreed = call(kit, 'chooseMedia', {count: 1})
  await wait(10)
  asked[2].resolve({event: 'agree', buttonId: 'agree-privacy'})
  const {ok, res} = await agreed
  expect(ok).toBe(true)
  expect(path.basename(res.tempFiles[0].tempFilePath)).toMatch(/^tmp_/) // no name of its own
  expect((await call(kit, 'chooseMedia', {count: 1})).err.errMsg).toBe('chooseMedia:fail cancel')
  expect(asked).toHaveLength(3) // agreed once, not asked again
})

// The uploader removes a named copy once its upload has failed; the file can be gone
// before the kit's read of it has started. The call fails, as on a phone, and the
// test process goes on.
test('uploadFile of a file removed before it is read fails the call', async () => {
  const kit = createKit({tmpDir: tmp})
  handle = (req, res) => req.resume().on('end', () => res.end('{}')) // answers only a whole body
  const file = path.join(tmp, 'gone.jpg')
  fs.writeFileSync(file, Buffer.alloc(1024, 1))
  const result = new Promise(resolve => kit.wx.uploadFile({url: `${base}/upload`, filePath: file, name: 'photo',
    success: res => resolve({ok: true, res}), fail: err => resolve({ok: false, err})}))
  fs.unlinkSync(file)
  const {ok, err} = await result
  handle = (req, res) => res.end('{}')
  expect(ok).toBe(false)
  expect(err.errMsg).toMatch(/^uploadFile:fail ENOENT/)
})

test('at most 10 requests and 5 sockets at once', async () => {
  const kit = createKit({tmpDir: tmp})
  let release
  const held = new Promise(resolve => { release = resolve })
  handle = (req, res) => held.then(() => res.end('{}'))
  const first = Array.from({length: MAX_TASKS}, () => call(kit, 'request', {url: `${base}/held`}))
  await wait(50)
  expect(kit.inFlight()).toBe(10)
  expect((await call(kit, 'request', {url: `${base}/eleventh`})).err.errMsg).toBe('request:fail exceed max task count')
  release()
  expect((await Promise.all(first)).every(r => r.ok)).toBe(true)
  handle = (req, res) => res.end('{}')

  const sockets = Array.from({length: MAX_SOCKETS}, () => kit.wx.connectSocket({url: base.replace('http', 'ws')}))
  await Promise.all(sockets.map(s => new Promise(resolve => s.onOpen(resolve))))
  const sixth = kit.wx.connectSocket({url: base.replace('http', 'ws')})
  expect((await new Promise(resolve => sixth.onError(resolve))).errMsg).toBe('connectSocket:fail exceed max socket count')
  sockets.forEach(s => s.close({}))
})

test('readFile refuses a file over 100 MB, whatever the range; open/read take it; storage holds 10 MB, 1 MB a key', async () => {
  expect(LIMITS).toMatchObject({readFile: 100 * 1024 * 1024, storage: 10 * 1024 * 1024,
    storageKey: 1024 * 1024, userData: 200 * 1024 * 1024})
  const kit = createKit({tmpDir: tmp})
  kit.limits.readFile = 1000 // the same rule, on a file this test can afford
  const file = path.join(tmp, 'big.bin')
  fs.writeFileSync(file, Buffer.alloc(1500, 7))
  const fsm = kit.wx.getFileSystemManager()
  const whole = await new Promise(resolve => fsm.readFile({filePath: file, fail: resolve}))
  expect(whole.errMsg).toBe('readFile:fail the maximum size of the file is 100MB')
  // WeChat: 单个文件大小上限为100M — a range of a bigger file is refused too
  const part = await new Promise(resolve => fsm.readFile({filePath: file, position: 1000, length: 100, fail: resolve}))
  expect(part.errMsg).toBe('readFile:fail the maximum size of the file is 100MB')
  const small = path.join(tmp, 'small.bin')
  fs.writeFileSync(small, Buffer.alloc(900, 3))
  const range = await new Promise(resolve => fsm.readFile({filePath: small, position: 800, length: 500, success: resolve}))
  expect(range.data.byteLength).toBe(100)

  // open/read/close: a real descriptor, a caller's ArrayBuffer, bounds checked
  const run = (method, options) => new Promise(resolve => fsm[method](Object.assign({}, options,
    {success: res => resolve({res}), fail: err => resolve({err})})))
  const {fd} = (await run('open', {filePath: file, flag: 'r'})).res
  const buffer = new ArrayBuffer(600)
  const read = (await run('read', {fd, arrayBuffer: buffer, offset: 100, length: 500, position: 1200})).res
  expect(read.bytesRead).toBe(300) // the file ends at 1500
  expect(new Uint8Array(read.arrayBuffer)[100]).toBe(7)
  expect((await run('read', {fd, arrayBuffer: buffer, offset: 200, length: 500, position: 0})).err.errMsg)
    .toBe('read:fail the value of "length" is out of range')
  expect((await run('read', {fd, arrayBuffer: buffer, offset: 700, length: 0})).err.errMsg)
    .toBe('read:fail the value of "offset" is out of range')
  expect((await run('read', {fd, arrayBuffer: Buffer.alloc(10), length: 10})).err.errMsg).toMatch(/ArrayBuffer/)
  expect(kit.files.openFds()).toBe(1)
  expect((await run('close', {fd})).res.errMsg).toBe('close:ok')
  expect((await run('read', {fd, arrayBuffer: buffer, length: 10, position: 0})).err.errMsg).toBe('read:fail bad file descriptor')
  expect((await run('open', {filePath: path.join(tmp, 'nope.bin')})).err.errno).toBe(1300002)

  expect(() => kit.wx.setStorageSync('big', 'x'.repeat(1024 * 1024))).toThrow('entry size limit')
  for (let i = 0; i < 10; i++) kit.wx.setStorageSync(`k${i}`, 'x'.repeat(1000 * 1000))
  expect(() => kit.wx.setStorageSync('one-more', 'x'.repeat(500 * 1000))).toThrow('exceed storage max size 10MB')
})

test('a chooseMedia that strips EXIF, and a restart that removes temp files only', async () => {
  const kit = createKit({tmpDir: tmp})
  kit.privacy.agreed = true
  const [photo] = makePhotos(tmp, [{name: 'camera.jpg', width: 64, height: 48, taken: '2023:07:14 18:30:05'}])
  const original = fs.readFileSync(photo.path)
  expect(original.includes(Buffer.from('Exif\0\0'))).toBe(true)
  expect(stripExif(original).includes(Buffer.from('Exif\0\0'))).toBe(false)

  kit.media = [photo, photo]
  const kept = (await call(kit, 'chooseMedia', {count: 1})).res.tempFiles[0]
  expect(fs.readFileSync(kept.tempFilePath).equals(original)).toBe(true)
  kit.ui.stripExif = true
  const stripped = (await call(kit, 'chooseMedia', {count: 1})).res.tempFiles[0]
  const bytes = fs.readFileSync(stripped.tempFilePath)
  expect(bytes.includes(Buffer.from('Exif\0\0'))).toBe(false)
  expect(stripped.size).toBe(bytes.length)
  expect(bytes.subarray(-2).equals(Buffer.from([0xff, 0xd9]))).toBe(true) // still a whole JPEG

  const fsm = kit.wx.getFileSystemManager()
  const saved = `${kit.wx.env.USER_DATA_PATH}/kept.jpg`
  fsm.copyFileSync(stripped.tempFilePath, saved)
  expect(() => fsm.copyFileSync(stripped.tempFilePath, path.join(tmp, 'outside.jpg'))).toThrow('permission denied')
  kit.wx.setStorageSync('tubei.x', {a: 1})
  kit.restart()
  expect(fs.existsSync(kept.tempFilePath)).toBe(false)
  expect(fs.existsSync(stripped.tempFilePath)).toBe(false)
  expect(fs.existsSync(saved)).toBe(true)
  expect(kit.wx.getStorageSync('tubei.x')).toEqual({a: 1})
  expect(fs.existsSync(photo.path)).toBe(true) // the album itself is not a temp file
})

test('<image> and previewImage send no header: a URL that needs the token fails, as on a phone', async () => {
  const kit = createKit({tmpDir: tmp, phone: {domains: ['tubei.example.com']}, suspendAfter: 20})
  const seen = []
  handle = (req, res) => {
    seen.push(req.headers)
    if (req.url.startsWith('/needs-token')) {
      res.writeHead(req.headers.authorization ? 200 : 401, {'Content-Type': 'image/jpeg'})
      return res.end('jpeg')
    }
    if (req.url.startsWith('/text')) return res.end('not an image')
    res.writeHead(200, {'Content-Type': 'image/jpeg'})
    res.end('jpeg-bytes')
  }
  const [local] = makePhotos(tmp, [{name: 'local.jpg', width: 8, height: 8}])
  const sent = kit.sent
  const results = await Promise.all([
    `${base}/open.jpg`, `${base}/needs-token.jpg`, `${base}/text`, local.path,
    '/api/v1/images/abc/thumbnail', // relative to the server: a phone looks in the package
    'http://10.0.3.5:8000/x.jpg', 'https://elsewhere.example.net/x.jpg', '',
  ].map(src => kit.images.load(src)))
  expect(results.map(r => r.ok)).toEqual([true, false, false, true, false, false, false, false])
  expect(results[0].bytes).toBe('jpeg-bytes'.length)
  expect(results[1].status).toBe(401)
  expect(results[5].error).toBe('url not in domain list')
  expect(kit.sent - sent).toBe(3) // the refused and local ones reached no one
  expect(seen.every(h => !h.authorization)).toBe(true)

  // previewImage opens on `current`, loaded the same way
  await call(kit, 'previewImage', {current: `${base}/needs-token.jpg`, urls: [`${base}/needs-token.jpg`]})
  expect(kit.lastCall('previewImage')).toMatchObject({shown: false, status: 401})
  await call(kit, 'previewImage', {current: `${base}/open.jpg`, urls: [`${base}/open.jpg`]})
  expect(kit.lastCall('previewImage').shown).toBe(true)

  // a suspended mini-program loads nothing
  await kit.background()
  expect((await kit.images.load(`${base}/open.jpg`)).error).toBe('interrupted')
  kit.foreground()
})

test('videos: chooseMedia mix, previewMedia and saveVideoToPhotosAlbum refuse what a phone refuses', async () => {
  const kit = createKit({tmpDir: tmp})
  kit.privacy.agreed = true
  const [photo] = makePhotos(tmp, [{name: 'mix.jpg', width: 16, height: 16}])
  const [clip] = makeVideos(tmp, [{name: 'kit.mp4', seconds: 1}])

  for (const [options, wrong] of [[{mediaType: 'mix'}, 'mediaType should be Array'], [{mediaType: ['all']}, 'invalid mediaType'],
    [{count: 21}, 'count should be'], [{maxDuration: 120}, 'maxDuration'], [{sizeType: ['raw']}, 'invalid sizeType']]) {
    kit.media = [photo]
    expect((await call(kit, 'chooseMedia', options)).err.errMsg).toContain(wrong)
  }
  kit.media = [clip, photo]
  const images = (await call(kit, 'chooseMedia', {mediaType: ['image']})).res
  expect(images.tempFiles.map(f => f.fileType)).toEqual(['image']) // the video stays unpicked
  kit.media.push(photo)
  const mixed = (await call(kit, 'chooseMedia', {mediaType: ['mix'], count: 9})).res
  expect(mixed.type).toBe('mix')
  const video = mixed.tempFiles[0]
  expect(video).toMatchObject({fileType: 'video', duration: 1, width: 160, height: 120, size: fs.statSync(clip.path).size})
  expect(fs.existsSync(video.thumbTempFilePath)).toBe(true)
  expect(video.tempFilePath).toMatch(/tmp_\w+\.mp4$/)

  expect((await call(kit, 'previewMedia', {sources: video.tempFilePath})).err.errMsg).toContain('sources should be Array')
  expect((await call(kit, 'previewMedia', {sources: []})).err.errMsg).toContain('should not be empty')
  expect((await call(kit, 'previewMedia', {sources: [{url: 'x', type: 'movie'}]})).err.errMsg).toContain('invalid sources[].type')
  expect((await call(kit, 'previewMedia', {sources: [{url: video.tempFilePath, type: 'video'}], current: '0'})).err.errMsg)
    .toContain('current should be Number')
  handle = (req, res) => {
    res.writeHead(req.headers.authorization ? 200 : 401, {'Content-Type': 'video/mp4'})
    res.end(fs.readFileSync(clip.path))
  }
  await call(kit, 'previewMedia', {sources: [{url: `${base}/v.mp4`, type: 'video'}]})
  expect(kit.lastCall('previewMedia')).toMatchObject({shown: false, status: 401}) // no header from the player

  expect((await call(kit, 'saveVideoToPhotosAlbum', {filePath: photo.path})).err.errMsg).toBe('saveVideoToPhotosAlbum:fail invalid video')
  const renamed = path.join(tmp, 'not-a-video.mp4')
  fs.copyFileSync(photo.path, renamed)
  expect((await call(kit, 'saveVideoToPhotosAlbum', {filePath: renamed})).err.errMsg).toBe('saveVideoToPhotosAlbum:fail invalid video')
  expect((await call(kit, 'saveVideoToPhotosAlbum', {filePath: video.tempFilePath})).ok).toBe(true)
  expect(kit.videoAlbum).toHaveLength(1)

  // downloadFile: 200 MB at most; a filePath only in the user data folder
  handle = (req, res) => {
    res.writeHead(200, {'Content-Type': 'video/mp4', 'Content-Length': String(201 * 1024 * 1024)})
    res.write(Buffer.alloc(1024))
  }
  expect((await call(kit, 'downloadFile', {url: `${base}/huge.mp4`})).err.errMsg).toBe('downloadFile:fail exceed max file size')
  handle = (req, res) => {
    res.writeHead(200, {'Content-Type': 'video/quicktime'})
    res.end('mov')
  }
  expect((await call(kit, 'downloadFile', {url: `${base}/a.mov`})).res.tempFilePath).toMatch(/\.mov$/)
  expect((await call(kit, 'downloadFile', {url: `${base}/a.mov`, filePath: path.join(tmp, 'out.mp4')})).err.errMsg)
    .toMatch(/permission denied/)
  const kept = `${kit.wx.env.USER_DATA_PATH}/a.mp4`
  expect((await call(kit, 'downloadFile', {url: `${base}/a.mov`, filePath: kept})).res.filePath).toBe(kept)
  handle = (req, res) => res.end('{}')
})
