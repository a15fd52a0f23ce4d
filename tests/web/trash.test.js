/** @jest-environment node */
// The trash: what was deleted is listed; restore brings it back to the timeline;
// delete for good asks first, and then it is gone from the server too.
const fs = require('fs')
const os = require('os')
const path = require('path')
const {describeWeb, useApp, apiStatus} = require('./harness')
const {makePhotos, uploadDirect} = require('../miniprogram/kit/server')

describeWeb('trash', () => {
  const app = useApp()

  test('restore, and delete for good after a confirmation, by keyboard', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-trash-'))
    const token = app.server.token('mum')
    const ids = []
    for (const file of makePhotos(dir, [
      {name: 'keep.jpg', width: 200, height: 150, taken: '2024:06:01 10:00:00'},
      {name: 'gone.jpg', width: 200, height: 150, taken: '2024:06:02 10:00:00'},
    ])) ids.push((await uploadDirect(app.server, token, file.path)).items[0].id)
    fs.rmSync(dir, {recursive: true, force: true})
    for (const id of ids) expect(await apiStatus(app, 'DELETE', `/images/${id}`, token)).toBe(200)

    const page = await app.newPage()
    await page.getByRole('navigation').getByRole('link', {name: '回收站'}).click()
    const restore = page.getByRole('button', {name: '恢复 keep.jpg'})
    await restore.waitFor()
    await page.waitForFunction(() => [...document.querySelectorAll('.trash-thumb')].every(img => img.naturalWidth > 0))
    await app.shot(page, 'trash')

    await restore.focus()
    await page.keyboard.press('Enter')
    await restore.waitFor({state: 'detached'})
    expect(await apiStatus(app, 'GET', `/images/${ids[0]}`, token)).toBe(200)

    await page.getByRole('button', {name: '永久删除 gone.jpg'}).click()
    const confirm = page.getByRole('alertdialog')
    await confirm.waitFor()
    await page.keyboard.press('Escape') // cancel keeps it
    await confirm.waitFor({state: 'detached'})
    expect(await apiStatus(app, 'GET', `/trash/${ids[1]}`, token)).toBe(200)
    await page.getByRole('button', {name: '永久删除 gone.jpg'}).click()
    await confirm.getByRole('button', {name: '永久删除'}).click()
    await page.getByText('回收站是空的').waitFor()
    expect(await apiStatus(app, 'GET', `/trash/${ids[1]}`, token)).toBe(404)

    await page.getByRole('navigation').getByRole('link', {name: '照片'}).click()
    await page.getByRole('button', {name: '照片 keep.jpg'}).waitFor()
  })
})
