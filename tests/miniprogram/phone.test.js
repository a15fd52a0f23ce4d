/**
 * Journeys on a kit that behaves like a phone, against a real server: a backup that
 * survives the background twice with no tap, the privacy agreement refused and then
 * accepted, and addresses WeChat will not let the mini-program reach.
 * @jest-environment jsdom
 */
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const {pairedSession} = require('./kit/session')
const {makePhotos} = require('./kit/server')
const {loadPage, recordRenders, until, text, ROOT} = require('./kit/pages')

// WeChat suspends after ~5 s and closes sockets after ~10 s; the same order, faster.
const session = pairedSession('tubei-phone-', {suspendAfter: 250, socketsCloseAfter: 450})

let events
beforeAll(() => {
  session.kit.launch(path.join(ROOT, 'app.js'))
  events = require('../../miniprogram/utils/events')
})

function serverList(kit, server) {
  return new Promise(resolve => kit.wx.request({
    url: `${server.url}/api/v1/images?limit=200`,
    header: {Authorization: `Bearer ${kit.wx.getStorageSync('tubei.token')}`},
    success: ({data}) => resolve(data.items),
  }))
}

test('thirty photos back up through two trips to the background, with no tap', async () => {
  const {kit, server, tmp} = session
  kit.privacy.agreed = true
  const specs = Array.from({length: 30}, (_, i) => (i % 5 === 4
    ? {name: `big-${i}.jpg`, width: 900, height: 700, seed: 500 + i} // tus
    : {name: `small-${i}.jpg`, width: 360, height: 270, seed: 500 + i})) // multipart
  const photos = makePhotos(tmp, specs)
  const THRESHOLD = 600 * 1024
  const large = photos.filter(p => fs.statSync(p.path).size >= THRESHOLD)
  expect(large).toHaveLength(6)

  const page = loadPage('backup')
  page.instance.onLoad()
  page.instance.onShow()
  Object.assign(page.instance.uploader, {threshold: THRESHOLD, chunkSize: 256 * 1024})
  kit.uplink = 1024 * 1024 // a phone's uplink: photos take a while to leave
  const seen = recordRenders(page, p => ({states: p.data.items.map(i => i.state), banner: p.data.banner}))
  await until(() => events.isOpen(), {what: 'socket open'})
  const before = kit.log.length

  kit.media = photos.slice(0, 20)
  page.querySelector('.btn-choose').dispatchEvent('tap')
  await until(() => page.data.items.length === 20, {what: 'first pick'})
  kit.media = photos.slice(20) // chooseMedia gives 20 at most: a second pick
  page.querySelector('.btn-choose').dispatchEvent('tap')
  await until(() => page.data.items.length === 30, {what: 'second pick'})
  const taps = kit.log.filter(e => e.api === 'chooseMedia').length

  for (const trip of [1, 2]) {
    const count = state => page.data.items.filter(i => i.state === state).length
    // Leave while a large photo is early in its tus upload: it cannot finish in time.
    const early = () => page.instance.uploader.items.some(i => i.state === 'uploading' && i.size >= THRESHOLD && i.progress < 40)
    // Once the backup has run a while (a second of sending), the banner also says how
    // long is left: the second trip waits for that, however slow the machine is.
    const eta = () => /^正在备份，还剩 \d+ 张，(约 \d+ 分钟|不到 1 分钟)。/.test(text(page, '.banner__text'))
    // And while a photo's bytes are still leaving, so that leaving interrupts one (a
    // large photo may be between two chunks, every small one already sent).
    await until(() => early() && kit.uploadsSending() > 0 && count('done') >= trip * 2 && (trip === 1 || eta()),
      {what: `uploads before trip ${trip}`, timeout: 30000})
    expect(kit.screenOn).toBe(true)
    expect(text(page, '.banner__text')).toMatch(/^正在备份，还剩 \d+ 张.*请让图备留在前台、不要锁屏/)
    // The network slows as the person walks off, so that the bytes on their way are
    // still on their way when WeChat suspends the mini-program.
    kit.uplink = 16 * 1024
    await kit.background() // suspended now: what was in flight failed `interrupted`
    kit.uplink = 1024 * 1024
    await new Promise(r => setTimeout(r, 300)) // and WeChat closed the socket
    const sockets = kit.log.filter(e => e.api === 'connectSocket').length
    kit.foreground()
    // The socket comes back at once, not after its backoff (1 s and up).
    const reconnected = () => kit.log.filter(e => e.api === 'connectSocket').length === sockets + 1
    await until(() => reconnected() && events.isOpen(), {what: 'socket back', timeout: 700})
  }
  await until(() => page.data.items.every(i => i.state === 'done'), {what: 'all done', timeout: 30000})

  // Interrupted uploads were paused, never failed, and nobody tapped anything.
  expect(seen.some(r => r.states.includes('paused'))).toBe(true)
  expect(seen.some(r => r.states.includes('failed'))).toBe(false)
  expect(kit.log.filter(e => e.api === 'chooseMedia').length).toBe(taps)
  expect(page.data.summary).toBe('30 张已备份')
  expect(page.data.banner).toBe('')
  expect(kit.screenOn).toBe(false)
  // Each tus upload was created once and carried on from its offset.
  const calls = kit.log.slice(before).filter(e => e.api === 'request')
  expect(calls.filter(c => c.method === 'POST' && c.url.endsWith('/api/v1/uploads/'))).toHaveLength(6)
  // The server has every photo, byte for byte (the id is the sha256), under IMG_ names.
  const items = await serverList(kit, server)
  const ids = new Set(items.map(i => i.id))
  photos.forEach(p => expect(ids.has(crypto.createHash('sha256').update(fs.readFileSync(p.path)).digest('hex'))).toBe(true))
  items.forEach(i => expect(i.filename).toMatch(/^IMG_\d{8}_\d{6}(_\d+)?\.jpg$/))
  kit.uplink = null
  page.instance.onUnload()
})

test('the privacy agreement refused, then accepted, on the page', async () => {
  const {kit, tmp} = session
  kit.privacy.agreed = false
  const [photo] = makePhotos(tmp, [{name: 'privacy.jpg', width: 320, height: 240, seed: 901}])
  const page = loadPage('backup')
  page.instance.onLoad()
  page.instance.onShow()

  kit.media = [photo]
  page.querySelector('.btn-choose').dispatchEvent('tap')
  await until(() => page.data.privacy, {what: 'agreement shown'})
  expect(text(page, '.privacy__text')).toContain('才能选择要备份的照片')
  page.querySelector('.privacy__no').dispatchEvent('tap')
  await until(() => page.data.notice, {what: 'refusal explained'})
  expect(page.data.privacy).toBeNull()
  expect(text(page, '.notice')).toContain('你没有同意图备的隐私保护指引')
  expect(text(page, '.notice')).toContain('与手机的相册权限无关')
  expect(kit.lastCall('openSetting')).toBeUndefined() // the settings page could not fix it
  expect(page.data.items).toHaveLength(0)

  page.querySelector('.btn-choose').dispatchEvent('tap')
  await until(() => page.data.privacy, {what: 'asked again'})
  kit.tapPrivacyAgree(page, 'pages/backup/backup')
  await until(() => page.data.items.length === 1 && page.data.items[0].state === 'done', {what: 'backed up'})
  expect(page.data.notice).toBe('')
  expect(kit.privacy.agreed).toBe(true)
  page.instance.onUnload()

  // Saving to the album: a privacy refusal is told apart from an album refusal.
  kit.privacy.agreed = false
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  gallery.instance.onShow()
  const saving = gallery.instance.save(gallery.data.images[0])
  await until(() => gallery.data.privacy, {what: 'agreement on the gallery'})
  expect(text(gallery, '.privacy__text')).toContain('才能把原图保存回手机相册')
  gallery.querySelector('.privacy__no').dispatchEvent('tap')
  expect(await saving).toBe(false)
  expect(kit.lastCall('showToast').title).toContain('没有同意隐私保护指引')
  expect(kit.log.some(e => e.api === 'showModal' && e.title === '无法保存到相册')).toBe(false)
  gallery.instance.onHide()
  gallery.instance.onUnload()
})

test('an address WeChat will not reach is named, with what to do', async () => {
  const {kit} = session
  const settings = loadPage('settings')
  await settings.instance.onLoad()
  const sent = kit.sent
  const token = kit.wx.getStorageSync('tubei.token')
  const server = kit.wx.getStorageSync('tubei.server')

  // The server on another subnet than the phone (127.0.0.0/8 in the kit).
  settings.setData({server: '10.0.3.5:8000', code: '123456'})
  await settings.instance.pair()
  expect(settings.data.status).toBe('unreachable')
  expect(settings.data.error).toMatch(/^手机不能访问这个地址（url not in domain list）。局域网服务器要和手机连着同一个 Wi-Fi/)
  expect(text(settings, '.status__why')).toContain('url not in domain list')
  expect(settings.data.help).toBe(true) // the connection guide opens by itself
  expect(text(settings, '.help')).toContain('设置 → 微信 → 本地网络')
  expect(text(settings, '.help')).toContain('--public-url')
  expect(kit.lastCall('request').url).toBe('http://10.0.3.5:8000/api/v1/auth/pair')

  // The phone's own address, and a domain nobody registered (so https).
  for (const [typed, url] of [['127.0.0.100:8000', 'http://127.0.0.100:8000'], ['photos.example.com', 'https://photos.example.com']]) {
    settings.setData({server: typed, code: '123456'})
    await settings.instance.pair()
    expect(kit.lastCall('request').url).toBe(`${url}/api/v1/auth/pair`)
    expect(settings.data.error).toContain('url not in domain list')
  }
  // Plain http is for a LAN address only.
  settings.setData({server: 'http://photos.example.com', code: '123456'})
  await settings.instance.pair()
  expect(settings.data.error).toMatch(/^外网地址必须用 https/)
  expect(kit.sent).toBe(sent) // none of it left the phone

  kit.wx.setStorageSync('tubei.token', token)
  kit.wx.setStorageSync('tubei.server', server)
})
