/** @jest-environment node */
// The devices page: this browser marked, another signed out from here after a
// confirmation, and that other browser sent to sign-in live, without a reload.
const {describeWeb, useApp, apiStatus, sessionOf} = require('./harness')

describeWeb('devices', () => {
  const app = useApp()

  test('signing another browser out sends it to sign-in at once', async () => {
    const here = await app.newPage({device: '客厅的电脑'})
    const there = await app.newPage({device: '书房的笔记本'})
    const thereToken = (await sessionOf(there)).token
    // the other browser sits on its timeline, its socket open
    await there.getByRole('navigation').getByRole('link', {name: '照片'}).waitFor()

    await here.getByRole('link', {name: '设备'}).click()
    const list = here.getByRole('list', {name: '设备'})
    const mine = list.getByRole('listitem').filter({hasText: '客厅的电脑'})
    await mine.waitFor()
    expect(await mine.getAttribute('aria-current')).toBe('true')
    await mine.getByText('本设备').waitFor()
    expect(await mine.getByRole('button').count()).toBe(0) // this one signs out from the top bar
    await app.shot(here, 'devices')

    await here.getByRole('button', {name: '退出登录: 书房的笔记本'}).click()
    const dialog = here.getByRole('alertdialog')
    await dialog.waitFor()
    await app.shot(here, 'devices-confirm')
    await dialog.getByRole('button', {name: '取消'}).click()
    expect(await apiStatus(app, 'GET', '/devices', thereToken)).toBe(200)

    await here.getByRole('button', {name: '退出登录: 书房的笔记本'}).click()
    await here.getByRole('alertdialog').getByRole('button', {name: '确定退出'}).click()
    await list.getByRole('listitem').filter({hasText: '书房的笔记本'}).waitFor({state: 'detached'})

    await there.getByLabel('配对码').waitFor()
    expect(await sessionOf(there)).toBeNull()
    expect(await apiStatus(app, 'GET', '/devices', thereToken)).toBe(401)
    await app.shot(there, 'signed-out-elsewhere')
    // and this browser is still signed in
    expect(await list.getByRole('listitem').count()).toBe(1)
  })

  test('a device signed out elsewhere leaves the list live, and its browser goes to sign-in', async () => {
    const here = await app.newPage({device: '客厅的电脑'})
    const other = await app.newPage({device: '平板'})
    await here.getByRole('link', {name: '设备'}).click()
    const list = here.getByRole('list', {name: '设备'})
    const row = list.getByRole('listitem').filter({hasText: '平板'})
    await row.waitFor()
    const otherId = (await sessionOf(other)).device.id
    const token = (await sessionOf(here)).token
    const response = await fetch(`${app.url}/api/v1/devices/${otherId}`, {
      method: 'DELETE', headers: {Authorization: `Bearer ${token}`},
    })
    expect(response.status).toBe(204)
    await row.waitFor({state: 'detached'})
    await other.getByLabel('配对码').waitFor()
  })

  test('on a 360-pixel phone the top bar and the list fit the width', async () => {
    const phone = await app.newPage({device: '妈妈的手机浏览器', viewport: {width: 360, height: 740}})
    await phone.getByRole('link', {name: '设备'}).click()
    await phone.getByRole('list', {name: '设备'}).getByRole('listitem').first().waitFor()
    const widths = await phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth])
    expect(widths[0]).toBeLessThanOrEqual(widths[1])
    for (const name of ['照片', '回收站', '设备']) {
      expect(await phone.getByRole('link', {name}).isVisible()).toBe(true)
    }
    expect(await phone.getByRole('button', {name: '退出登录', exact: true}).isVisible()).toBe(true)
    await app.shot(phone, 'devices-phone')
  })
})
