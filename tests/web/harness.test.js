/** @jest-environment node */
// The harness's own promise: a page that breaks the Content-Security-Policy or throws
// fails its test, and the server sends the policy the app is built to live under.
const {describeWeb, useApp} = require('./harness')

describeWeb('harness', () => {
  const app = useApp()

  test('an inline style and an uncaught error are reported, and fail the check', async () => {
    const page = await app.newPage({signedIn: false})
    const reported = page.waitForEvent('console', m => /CSP violation: style-src/.test(m.text()))
    await page.evaluate(() => document.head.insertAdjacentHTML('beforeend', '<style>body{color:red}</style>'))
    await reported
    const thrown = page.waitForEvent('pageerror')
    await page.evaluate(() => setTimeout(() => { throw new Error('boom') }))
    await thrown
    await expect(app.check()).rejects.toThrow(/CSP violation: style-src[\s\S]*boom/)
  })

  test('the index carries the policy; the scripts are same-origin files', async () => {
    const page = await app.newPage({signedIn: false})
    const response = await page.goto(app.url + '/devices/deep/link')
    expect(response.status()).toBe(200)
    expect(response.headers()['content-security-policy']).toContain("script-src 'self' 'wasm-unsafe-eval'")
    const scripts = await page.evaluate(() => [...document.scripts].map(s => s.src || 'inline'))
    expect(scripts.length).toBeGreaterThan(0)
    for (const src of scripts) expect(src.startsWith(`${app.url}/assets/`)).toBe(true)
  })
})
