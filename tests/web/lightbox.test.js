/** @jest-environment node */
// The lightbox: opened by click or Enter, arrow keys move, Esc closes (keys pressed as it
// opens too), a video plays; delete with undo, seen live by another browser signed in as
// the same person.
const fs = require('fs')
const os = require('os')
const path = require('path')
const {describeWeb, useApp} = require('./harness')
const {makePhotos, makeVideos, uploadDirect} = require('../miniprogram/kit/server')

describeWeb('lightbox', () => {
  const app = useApp()
  let dir

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-lightbox-'))
    const token = app.server.token('mum')
    const photos = makePhotos(dir, [
      {name: 'first.jpg', width: 640, height: 480, taken: '2024:05:03 10:00:00'},
      {name: 'second.jpg', width: 480, height: 640, taken: '2024:05:02 10:00:00'},
      {name: 'older.jpg', width: 320, height: 240, taken: '2024:04:20 10:00:00'},
    ])
    const videos = makeVideos(dir, [{name: 'clip.mp4', seconds: 2}])
    for (const file of [...photos, ...videos]) await uploadDirect(app.server, token, file.path)
  })
  afterAll(() => fs.rmSync(dir, {recursive: true, force: true}))

  // The dialog shows before its photo's record has loaded, and is named once it has.
  const named = (page, name) => page.waitForFunction(
    want => document.querySelector('.lightbox')?.getAttribute('aria-label') === want, name)

  test('click opens; arrows move across months; Esc closes; Enter opens from the keyboard', async () => {
    const page = await app.newPage()
    // The video has no time taken: it sorts by its upload, the newest, first.
    await page.getByRole('button', {name: '照片 first.jpg'}).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    await named(page, '查看 first.jpg')
    await page.waitForFunction(() => {
      const img = document.querySelector('.lightbox img')
      return img && img.complete && img.naturalWidth > 0
    })
    await app.shot(page, 'lightbox-photo')
    await page.keyboard.press('ArrowRight')
    await named(page, '查看 second.jpg')
    await page.keyboard.press('ArrowRight') // into April
    await named(page, '查看 older.jpg')
    await page.keyboard.press('ArrowLeft')
    await named(page, '查看 second.jpg')
    const download = await dialog.getByRole('link', {name: '下载原图'}).getAttribute('href')
    expect(download).toMatch(/\/original\?/)
    await page.keyboard.press('Escape')
    await dialog.waitFor({state: 'detached'})
    // The focus went to the cell of the photo last shown; Enter opens that one.
    expect(await page.evaluate(() => document.activeElement.getAttribute('aria-label'))).toBe('照片 second.jpg')
    await page.keyboard.press('Enter')
    await dialog.waitFor()
    await named(page, '查看 second.jpg')
  })

  test('a key pressed the instant the lightbox opens is not lost', async () => {
    const page = await app.newPage()
    const cell = page.getByRole('button', {name: '照片 first.jpg'})
    await cell.waitFor()
    // No wait for the dialog: the key follows the click at once, while the focus is
    // still on the cell.
    await cell.click()
    await page.keyboard.press('ArrowRight')
    await page.waitForFunction(() => {
      const box = document.querySelector('.lightbox')
      return box && box.getAttribute('aria-label') === '查看 second.jpg'
    })
    await page.keyboard.press('Escape')
    await page.getByRole('dialog').waitFor({state: 'detached'})
    // Esc as it opens: the dialog was there, and went.
    await page.evaluate(() => {
      window.lightboxOpened = false
      new MutationObserver(() => {
        if (document.querySelector('.lightbox')) window.lightboxOpened = true
      }).observe(document.body, {subtree: true, childList: true})
    })
    await cell.click()
    await page.keyboard.press('Escape')
    await page.waitForFunction(() => window.lightboxOpened && !document.querySelector('.lightbox'))
  })

  test('a video plays in the lightbox', async () => {
    const page = await app.newPage()
    await page.getByRole('button', {name: /^视频，0:02/}).click()
    await page.getByRole('dialog').waitFor()
    await page.waitForFunction(() => {
      const video = document.querySelector('.lightbox video')
      return video && video.readyState >= 2
    }, null, {timeout: 20000})
    await app.shot(page, 'lightbox-video')
  })

  test('delete and undo, seen live in a second browser of the same person', async () => {
    const page = await app.newPage()
    const other = await app.newPage({device: '客厅的电脑'})
    const cellOf = p => p.getByRole('button', {name: '照片 older.jpg'})
    await cellOf(other).waitFor()
    await cellOf(page).click()
    await page.getByRole('dialog').getByRole('button', {name: '删除'}).click()
    await page.getByRole('status').filter({hasText: '已移到回收站'}).waitFor()
    await cellOf(other).waitFor({state: 'detached'})
    await cellOf(page).waitFor({state: 'detached'})
    await page.getByRole('button', {name: '撤销'}).click()
    await cellOf(other).waitFor()
    await cellOf(page).waitFor()
  })
})
