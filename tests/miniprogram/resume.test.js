/**
 * A large photo goes up in tus chunks to the real server; the network is cut
 * mid-way; the next start of the backup page resumes it from where it stopped.
 * @jest-environment jsdom
 */
const crypto = require('crypto')
const fs = require('fs')
const {pairedSession} = require('./kit/session')
const {makePhotos} = require('./kit/server')
const {loadPage, until} = require('./kit/pages')

const session = pairedSession('tubei-resume-')

const SMALL = {threshold: 256 * 1024, chunkSize: 256 * 1024}

test('cut the network mid-way through a large upload, resume on the next start', async () => {
  const {kit, server, tmp} = session
  const [photo] = makePhotos(tmp, [{name: 'IMG_BIG.jpg', width: 1200, height: 900, seed: 7}])
  const size = fs.statSync(photo.path).size
  expect(size).toBeGreaterThan(4 * SMALL.chunkSize)

  let patches = 0
  kit.beforeRequest = ({header}) => {
    if (header['X-HTTP-Method-Override'] === 'PATCH' && ++patches === 3) kit.setOnline(false)
  }
  const first = loadPage('backup')
  first.instance.onLoad()
  first.instance.onShow()
  Object.assign(first.instance.uploader, SMALL)
  kit.media = [photo]
  await first.instance.choose()
  expect(first.data.items[0].state).toBe('failed')
  const stopped = first.data.items[0].progress
  expect(stopped).toBeGreaterThan(0)
  expect(stopped).toBeLessThan(100)
  first.instance.onUnload()

  // The mini-program starts again with the network back: the stored tus URL is
  // asked (HEAD) where it stands and only the rest is sent.
  kit.beforeRequest = null
  kit.setOnline(true)
  const before = kit.log.length
  const second = loadPage('backup')
  second.instance.onLoad()
  second.instance.onShow()
  await until(() => second.data.items.length && second.data.items[0].state === 'done', {what: 'resumed upload'})
  const calls = kit.log.slice(before).filter(e => e.api === 'request')
  expect(calls.filter(c => c.method === 'HEAD')).toHaveLength(1)
  expect(calls.some(c => c.url.endsWith('/api/v1/uploads/'))).toBe(false) // not created again
  const sent = calls.filter(c => c.header && c.header['X-HTTP-Method-Override'] === 'PATCH')
  expect(Number(sent[0].header['Upload-Offset'])).toBeGreaterThan(0)
  expect(second.data.summary).toBe('1 张已备份')

  // The server has the exact bytes.
  const sha = crypto.createHash('sha256').update(fs.readFileSync(photo.path)).digest('hex')
  const answer = await new Promise(resolve => kit.wx.request({
    url: `${server.url}/api/v1/images/${sha}`,
    header: {Authorization: `Bearer ${kit.wx.getStorageSync('tubei.token')}`},
    success: resolve,
  }))
  expect(answer.statusCode).toBe(200)
  expect(answer.data.size).toBe(size)
  second.instance.onUnload()
})

test('a tus upload names its whole-file sha256 and recovers from an offset conflict', async () => {
  const {kit, server, tmp} = session
  const [photo] = makePhotos(tmp, [{name: 'IMG_CONFLICT.jpg', width: 1200, height: 900, seed: 11}])
  const sha = crypto.createHash('sha256').update(fs.readFileSync(photo.path)).digest('hex')
  let patches = 0
  kit.beforeRequest = ({header}) => {
    // The third chunk claims a stale offset, as a client would after a lost answer.
    if (header['X-HTTP-Method-Override'] === 'PATCH' && ++patches === 3) header['Upload-Offset'] = '0'
  }
  const before = kit.log.length
  const page = loadPage('backup')
  page.instance.onLoad()
  page.instance.onShow()
  Object.assign(page.instance.uploader, SMALL)
  kit.media = [photo]
  await page.instance.choose()
  kit.beforeRequest = null
  expect(page.data.items[0].error).toBe('')
  expect(page.data.items[0].state).toBe('done')

  const calls = kit.log.slice(before).filter(e => e.api === 'request')
  const creation = calls.find(c => c.url.endsWith('/api/v1/uploads/'))
  const metadata = Object.fromEntries(creation.header['Upload-Metadata'].split(',').map(pair => {
    const [key, value] = pair.split(' ')
    return [key, Buffer.from(value, 'base64').toString()]
  }))
  // Named by the time of the pick (the photo has no EXIF), never the tmp_ temp name.
  expect(metadata.filename).toMatch(/^IMG_\d{8}_\d{6}\.jpg$/)
  expect(metadata.sha256).toBe(sha)
  // Asked where it stands once after the refusal (a 409, or the connection the
  // server closed before the client read the 409).
  expect(calls.filter(c => c.method === 'HEAD')).toHaveLength(1)
  const answer = await new Promise(resolve => kit.wx.request({
    url: `${server.url}/api/v1/images/${sha}`,
    header: {Authorization: `Bearer ${kit.wx.getStorageSync('tubei.token')}`},
    success: resolve,
  }))
  expect(answer.statusCode).toBe(200)
  expect(answer.data.size).toBe(fs.statSync(photo.path).size)
  page.instance.onUnload()
})
