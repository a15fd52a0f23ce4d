/**
 * miniprogram/utils without a page: the request wrapper's limits and messages, the
 * events socket's reconnect, and tus resume after the network is cut.
 * @jest-environment jsdom
 */
const crypto = require('crypto')
const fs = require('fs')
const http = require('http')
const os = require('os')
const path = require('path')
const WebSocket = require('ws')
const {createKit} = require('./kit/wx')
const {until} = require('./kit/pages')

let kit
let tmp
let stub // a small Node server whose behaviour each test sets
let handle = (req, res) => res.end()

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-utils-'))
  kit = createKit({tmpDir: tmp})
  global.wx = kit.wx
  stub = http.createServer((req, res) => handle(req, res))
  await new Promise(resolve => stub.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${stub.address().port}`
  kit.wx.setStorageSync('tubei.server', url)
  kit.wx.setStorageSync('tubei.token', 'secret-token')
})

afterAll(async () => {
  require('../../miniprogram/utils/events').close()
  stub.closeAllConnections()
  await new Promise(resolve => stub.close(resolve))
  fs.rmSync(tmp, {recursive: true, force: true})
})

const api = () => require('../../miniprogram/utils/request')

test('the kit refuses PATCH the way wx.request does', async () => {
  const error = await new Promise(resolve => kit.wx.request({url: 'http://127.0.0.1:1/', method: 'PATCH', fail: resolve}))
  expect(error.errMsg).toBe('request:fail method is invalid')
})

test('errors become short Chinese sentences; the token is sent', async () => {
  let seen
  handle = (req, res) => {
    seen = req.headers.authorization
    res.writeHead(401, {'Content-Type': 'application/json'})
    res.end(JSON.stringify({error: {code: 'unauthorized', message: 'A valid bearer token is required.'}}))
  }
  await expect(api().request({path: '/api/v1/images'})).rejects.toMatchObject({
    code: 'unauthorized', status: 401, message: '未配对或配对已失效，请重新配对'})
  expect(seen).toBe('Bearer secret-token')

  handle = (req, res) => { res.writeHead(502); res.end('<html>bad gateway</html>') }
  await expect(api().request({path: '/x'})).rejects.toMatchObject({message: '请求失败（502）'})

  const saved = kit.wx.getStorageSync('tubei.server')
  kit.wx.setStorageSync('tubei.server', 'http://127.0.0.1:1')
  await expect(api().request({path: '/x'})).rejects.toMatchObject({code: 'unreachable', status: 0,
    detail: expect.stringContaining('ECONNREFUSED'),
    message: expect.stringMatching(/^无法连接服务器（connect ECONNREFUSED 127\.0\.0\.1:1）。请确认/)})
  kit.wx.setStorageSync('tubei.server', saved)
})

test('never more than 10 requests in flight', async () => {
  // The stub holds every request until the test lets the batch go: each round, ten
  // arrive (however slowly a busy machine opens their connections) and no eleventh.
  let open = 0
  let most = 0
  let held = []
  handle = (req, res) => {
    open += 1
    most = Math.max(most, open)
    held.push(() => { open -= 1; res.end('{}') })
  }
  const all = Promise.all(Array.from({length: 30}, () => api().request({path: '/slow'})))
  for (let round = 0; round < 3; round += 1) {
    await until(() => held.length === 10, {what: `ten requests in round ${round}`})
    await new Promise(r => setTimeout(r, 50)) // room for an eleventh to arrive, were it sent
    expect(open).toBe(10)
    const release = held
    held = []
    release.forEach(fn => fn())
  }
  await all
  expect(most).toBe(10)
  expect(api().stats()).toEqual({inFlight: 0, waiting: 0})
})

test('the events socket reconnects and keeps its listeners', async () => {
  const wss = new WebSocket.Server({server: stub})
  const tokens = []
  let connections = 0
  wss.on('connection', (socket, req) => {
    connections += 1
    tokens.push(new URL(req.url, 'http://x').searchParams.get('token'))
    socket.send(JSON.stringify({type: 'hello', user: 'mum'}))
    if (connections === 1) setTimeout(() => socket.terminate(), 20) // a dropped line
  })
  const events = require('../../miniprogram/utils/events')
  const hellos = []
  events.on('hello', e => hellos.push(e))
  events.connect()
  events.connect() // single instance: a second call opens nothing
  await until(() => hellos.length === 2, {what: 'reconnect', timeout: 5000})
  expect(connections).toBe(2)
  expect(tokens).toEqual(['secret-token', 'secret-token'])
  expect(kit.log.filter(e => e.api === 'connectSocket')[0].url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/api\/v1\/events\?token=/)
  events.close()
  wss.close()
})

// A minimal tus 1.0 endpoint with the override header, standing in until the
// server's /api/v1/uploads/ lands (then the journey test should use the real one).
function tusStub() {
  const uploads = {}
  let serial = 0
  return {
    uploads,
    handle(req, res) {
      const method = req.headers['x-http-method-override'] || req.method
      if (req.method === 'POST' && req.url === '/api/v1/uploads/') {
        serial += 1
        uploads[serial] = {length: Number(req.headers['upload-length']), chunks: [], offset: 0,
          metadata: req.headers['upload-metadata']}
        res.writeHead(201, {Location: `/api/v1/uploads/${serial}`, 'Tus-Resumable': '1.0.0'})
        return res.end()
      }
      const upload = uploads[req.url.split('/').pop()]
      if (!upload) { res.writeHead(404); return res.end() }
      if (method === 'HEAD') {
        res.writeHead(200, {'Upload-Offset': upload.offset, 'Upload-Length': upload.length, 'Tus-Resumable': '1.0.0'})
        return res.end()
      }
      if (method === 'PATCH') {
        if (Number(req.headers['upload-offset']) !== upload.offset) { res.writeHead(409); return res.end() }
        const chunks = []
        req.on('data', c => chunks.push(c))
        req.on('end', () => {
          const body = Buffer.concat(chunks)
          upload.chunks.push(body)
          upload.offset += body.length
          const headers = {'Upload-Offset': upload.offset, 'Tus-Resumable': '1.0.0'}
          if (upload.offset === upload.length) {
            headers['Tubei-Image-Id'] = crypto.createHash('sha256').update(Buffer.concat(upload.chunks)).digest('hex')
          }
          res.writeHead(204, headers)
          res.end()
        })
        return undefined
      }
      res.writeHead(405)
      return res.end()
    },
  }
}

test('a large photo goes by tus chunks and resumes after the network is cut', async () => {
  const {Uploader, KEY_TUS} = require('../../miniprogram/utils/uploader')
  const tus = tusStub()
  const file = path.join(tmp, '大照片.jpg')
  fs.writeFileSync(file, crypto.randomBytes(300 * 1024))
  const chunkSize = 64 * 1024
  let patches = 0
  handle = (req, res) => {
    if (req.url.endsWith('/images/check')) {
      res.writeHead(200, {'Content-Type': 'application/json'})
      return res.end(JSON.stringify({present: [], missing: []}))
    }
    if (req.headers['x-http-method-override'] === 'PATCH') {
      patches += 1
      if (patches === 3) kit.setOnline(false) // the train enters a tunnel mid-chunk
    }
    return tus.handle(req, res)
  }

  const first = new Uploader({threshold: 100 * 1024, chunkSize})
  // A chat file (wx.chooseMessageFile) keeps its name.
  const [item] = await first.add([{path: file, name: '大照片.jpg', size: fs.statSync(file).size}], {source: 'chat'})
  expect(item.state).toBe('failed')
  expect(item.error).toBe('手机没有联网（net::ERR_INTERNET_DISCONNECTED）。连上网络后再试。')
  first.destroy()
  const pending = kit.wx.getStorageSync(KEY_TUS)
  expect(Object.keys(pending)).toEqual([item.digest])
  const upload = tus.uploads[1]
  expect(upload.offset).toBeGreaterThan(0)
  expect(upload.offset).toBeLessThan(upload.length)
  const metadata = Object.fromEntries(upload.metadata.split(',').map(pair => pair.split(' ')))
  expect(Buffer.from(metadata.filename, 'base64').toString('utf8')).toBe('大照片.jpg')
  expect(Buffer.from(metadata.sha256, 'base64').toString()).toBe(item.digest)

  // The next start: the stored URL is asked where it stands, and only the rest is sent.
  kit.setOnline(true)
  const before = upload.offset
  const logBefore = kit.log.length
  const second = new Uploader({threshold: 100 * 1024, chunkSize})
  const [resumed] = await second.resumePending()
  second.destroy()
  expect(resumed.state).toBe('done')
  expect(resumed.imageId).toBe(resumed.digest)
  expect(Buffer.concat(upload.chunks).equals(fs.readFileSync(file))).toBe(true)
  expect(Object.keys(tus.uploads)).toHaveLength(1) // no second upload was created
  const heads = kit.log.slice(logBefore).filter(e => e.api === 'request' && e.method === 'HEAD')
  expect(heads).toHaveLength(1)
  expect(upload.chunks.slice(-1)[0].length).toBeLessThanOrEqual(chunkSize)
  expect(before).toBeLessThan(upload.length)
  expect(kit.wx.getStorageSync(KEY_TUS)).toEqual({})
  kit.log.filter(e => e.api === 'request' && (e.header || {})['X-HTTP-Method-Override'])
    .forEach(e => expect(e.method).toBe('POST'))
})

test('media: signed URLs made absolute, with the time to refresh them; none from an older server', () => {
  global.wx = require('./kit/wx').createKit({tmpDir: require('os').tmpdir()}).wx
  wx.setStorageSync('tubei.server', 'http://192.168.1.5:8000')
  const {signedMedia, isFresh, MARGIN_MS} = require('../../miniprogram/utils/media')
  const image = {signed_urls: {original: '/api/v1/images/a/original?user=1&expires=9&signature=s',
    thumbnail: '/api/v1/images/a/thumbnail?user=1&expires=9&signature=t', preview: null, expires_in: 600}}
  const media = signedMedia(image, 1000)
  expect(media).toEqual({
    original: 'http://192.168.1.5:8000/api/v1/images/a/original?user=1&expires=9&signature=s',
    thumbnail: 'http://192.168.1.5:8000/api/v1/images/a/thumbnail?user=1&expires=9&signature=t',
    preview: '',
    until: 1000 + 600 * 1000 - MARGIN_MS,
  })
  expect(isFresh(media, media.until - 1)).toBe(true)
  expect(isFresh(media, media.until)).toBe(false)
  expect(signedMedia({urls: {original: '/x'}})).toBeNull()
  expect(isFresh(null)).toBe(false)
})
