/**
 * Settings › 在电脑浏览器登录: a paired phone makes the one-time code that signs a
 * computer's browser in as the same user, against a real Tubei server.
 * @jest-environment jsdom
 */
const http = require('http')
const {freshSession} = require('./kit/session')
const {loadPage, until, text} = require('./kit/pages')

const session = freshSession('tubei-browser-signin-')

// What the browser's sign-in form sends, from Node.
function pair(code, device) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({code, device})
    const req = http.request(`${session.server.url}/api/v1/auth/pair`, {
      method: 'POST', agent: false, headers: {'Content-Type': 'application/json'},
    }, res => {
      const chunks = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode, body: JSON.parse(Buffer.concat(chunks))}))
    })
    req.on('error', reject)
    req.end(body)
  })
}

test('a paired phone shows a code and the address, and the code signs a browser in as its user', async () => {
  const {kit, server} = session
  kit.ui.scanResult = server.pairingCode('mum')
  const settings = loadPage('settings')
  settings.instance.onLoad()
  expect(settings.querySelector('.cell-browser')).toBeFalsy() // not before pairing
  settings.instance.scan()
  await until(() => settings.data.status === 'paired', {what: 'paired'})
  expect(text(settings, '.cell-browser')).toContain('在电脑浏览器登录')

  await settings.instance.signInBrowser()
  const code = text(settings, '.browser__code')
  expect(code).toMatch(/^\d{6}$/)
  expect(text(settings, '.browser__address')).toBe(`${server.url}/`)
  expect(text(settings, '.browser__until')).toMatch(/^\d\d:\d\d 前有效，只能使用一次$/)
  const call = kit.log.find(e => e.api === 'request' && e.url.endsWith('/auth/pairing-codes'))
  expect(call.method).toBe('POST')

  const browser = await pair(code, 'Chrome · Windows')
  expect(browser.status).toBe(200)
  expect(browser.body.user.name).toBe('mum')
  expect((await pair(code, 'again')).status).toBe(401) // one-time

  settings.instance.closeBrowser()
  expect(settings.querySelector('.browser')).toBeFalsy()
})

test('past three waiting codes the phone says why in Chinese', async () => {
  const settings = loadPage('settings')
  settings.instance.onLoad()
  await settings.instance.refresh()
  expect(settings.data.status).toBe('paired')
  for (let n = 0; n < 3; n++) {
    await settings.instance.signInBrowser()
    expect(settings.data.browserError).toBe('')
  }
  await settings.instance.signInBrowser()
  expect(text(settings, '.browser-error')).toBe('已有 3 个配对码等待使用，请先用掉或等它们过期（10 分钟）')
})
