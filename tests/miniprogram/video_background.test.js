/**
 * A video's tus upload through a trip to the background, against a real server: the
 * suspension pauses it (never fails it), and on the return it carries on from the
 * server's offset by itself, its file read through the same descriptor API.
 * @jest-environment jsdom
 */
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const {pairedSession} = require('./kit/session')
const {makeVideos} = require('./kit/server')
const {loadPage, recordRenders, until, ROOT} = require('./kit/pages')

const session = pairedSession('tubei-video-bg-', {suspendAfter: 250, socketsCloseAfter: 450})
beforeAll(() => session.kit.launch(path.join(ROOT, 'app.js')))

test('a video upload cut by the background is paused, then resumes from its offset with no tap', async () => {
  const {kit, server, tmp} = session
  kit.privacy.agreed = true
  const [clip] = makeVideos(tmp, [{name: 'away.mp4', seconds: 2, size: 2 * 1024 * 1024, seed: 3}])
  const sha = crypto.createHash('sha256').update(fs.readFileSync(clip.path)).digest('hex')

  const page = loadPage('backup')
  page.instance.onLoad()
  page.instance.onShow()
  page.instance.uploader.chunkSize = 512 * 1024
  kit.uplink = 512 * 1024 // a second a chunk: the second one is still leaving when WeChat suspends
  const states = recordRenders(page, p => (p.data.items[0] || {}).state)
  let patches = 0
  let away = null
  let before = 0
  kit.beforeRequest = ({header}) => {
    if (header['X-HTTP-Method-Override'] !== 'PATCH' || ++patches !== 2) return
    before = kit.log.length - 1 // from this PATCH's own entry
    away = kit.background() // the person leaves as the second chunk starts
  }
  kit.media = [clip]
  page.querySelector('.btn-choose').dispatchEvent('tap')
  await until(() => away !== null, {what: 'the second chunk', timeout: 20000})
  await away // suspended: the chunk in flight failed `interrupted`
  await until(() => page.data.items[0].state === 'paused', {what: 'paused', timeout: 2000})
  kit.beforeRequest = null
  kit.foreground()
  await until(() => page.data.items[0].state === 'done', {what: 'the video resumed', timeout: 30000})
  kit.uplink = null

  expect(states).not.toContain('failed')
  const calls = kit.log.slice(before).filter(e => e.api === 'request')
  expect(calls.some(c => c.url.endsWith('/api/v1/uploads/'))).toBe(false) // the same upload
  expect(calls.filter(c => c.method === 'HEAD').length).toBeGreaterThanOrEqual(1) // asked where it stands
  // After the HEAD, the chunks go on from the offset the server holds, not from 0.
  const head = calls.findIndex(c => c.method === 'HEAD')
  const resumed = calls.slice(head).find(c => c.header && c.header['X-HTTP-Method-Override'] === 'PATCH')
  expect(Number(resumed.header['Upload-Offset'])).toBeGreaterThan(0)
  expect(kit.log.some(e => e.api === 'uploadFile')).toBe(false)
  expect(kit.files.openFds()).toBe(0)

  const answer = await new Promise(resolve => kit.wx.request({
    url: `${server.url}/api/v1/images/${sha}`,
    header: {Authorization: `Bearer ${kit.wx.getStorageSync('tubei.token')}`},
    success: resolve,
  }))
  expect(answer.data).toMatchObject({kind: 'video', size: 2 * 1024 * 1024, codec: 'h264'})
  page.instance.onUnload()
})
