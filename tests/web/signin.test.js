/** @jest-environment node */
// Signing a browser in with a pairing code, staying signed in across a reload, and
// signing out, which revokes the browser's token on the server.
const {describeWeb, useApp, apiStatus, sessionOf} = require('./harness')

describeWeb('sign in', () => {
  const app = useApp()

  test('a pairing code signs the browser in; a reload keeps it; signing out ends the token', async () => {
    const page = await app.newPage({signedIn: false})
    const code = page.getByLabel('配对码')
    await code.waitFor()
    await app.shot(page, 'signin')
    await code.fill(app.pairingCode('mum'))
    await page.getByLabel('设备名称').fill('书房的电脑')
    await page.getByRole('button', {name: '登录'}).click()

    const photos = page.getByRole('navigation').getByRole('link', {name: '照片'})
    await photos.waitFor()
    expect(await photos.getAttribute('aria-current')).toBe('page')
    expect(await code.count()).toBe(0)
    const session = await sessionOf(page)
    expect(session.user.name).toBe('mum')
    expect(session.device.name).toBe('书房的电脑')
    expect(await apiStatus(app, 'GET', '/devices', session.token)).toBe(200)

    await page.reload()
    await photos.waitFor()
    expect((await sessionOf(page)).token).toBe(session.token)

    await page.getByRole('button', {name: '退出登录'}).click()
    await page.getByLabel('配对码').waitFor()
    expect(await sessionOf(page)).toBeNull()
    expect(await apiStatus(app, 'GET', '/devices', session.token)).toBe(401)
  })

  test('a wrong code is refused with a reason, and the form stays', async () => {
    const page = await app.newPage({signedIn: false})
    app.allowErrors(page, /Failed to load resource: the server responded with a status of 4\d\d/)
    const good = app.pairingCode('mum')
    const wrong = String((Number(good) + 1) % 1000000).padStart(6, '0')
    await page.getByLabel('配对码').fill(wrong)
    await page.getByRole('button', {name: '登录'}).click()
    await expectAlert(page, '配对码不正确或已过期')
    await page.getByLabel('配对码').fill('12')
    await page.getByRole('button', {name: '登录'}).click()
    await expectAlert(page, '配对码应为 6 位数字')
    expect(await sessionOf(page)).toBeNull()
    // a tubei://pair link pasted whole works as well as its code
    await page.getByLabel('配对码').fill(app.server.pairingCode('mum'))
    await page.getByRole('button', {name: '登录'}).click()
    await page.getByRole('navigation').waitFor()
  })

  test('the default device name says which browser and system it is', async () => {
    const page = await app.newPage({signedIn: false})
    const name = await page.getByLabel('设备名称').inputValue()
    expect(name).toBe('Chrome · Linux')
  })

  test('English is one switch away, and stays chosen', async () => {
    const page = await app.newPage()
    await page.getByRole('button', {name: '切换到英文'}).click()
    await page.getByRole('link', {name: 'Photos'}).waitFor()
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('en')
    await page.getByRole('button', {name: 'Sign out', exact: true}).click()
    await page.getByLabel('Pairing code').waitFor()
    await app.shot(page, 'signin-english')
    await page.reload()
    await page.getByLabel('Pairing code').waitFor()
  })
})

async function expectAlert(page, text) {
  const alert = page.getByRole('alert')
  await alert.filter({hasText: text}).waitFor()
}
