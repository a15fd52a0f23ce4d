/** @jest-environment node */
// Every page on a 360x740 phone (touch, the page's meta viewport): nothing wider than the
// screen, the controls wholly on it, apart, and the ones a tap at their centre reaches;
// the lightbox's photo on the screen and a swipe moving to the next one; the upload
// panel's rows legible, and the uploads a reload interrupted in sight.
const crypto = require('crypto')
const fs = require('fs')
const os = require('os')
const path = require('path')
const {describeWeb, useApp, apiStatus, PHONE} = require('./harness')
const {EPSILON, rectOf, inside, overlapping, expectNoSidewaysScroll, controlProblems, touchDrag, swipe} = require('./screen')
const {makePhotos, uploadDirect} = require('../miniprogram/kit/server')

const MiB = 1024 * 1024
const CHUNK = 8 * MiB // web/src/upload/settings.js CHUNK_SIZE

// The scrubber's month buttons, how many, and those less than a finger's height (40 px).
function shortScrubberButtons(page) {
  return page.locator('.scrubber button').evaluateAll(buttons => ({
    count: buttons.length,
    short: buttons.map(b => [b.getAttribute('aria-label'), b.getBoundingClientRect().height]).filter(([, h]) => h < 40),
  }))
}

describeWeb('on a phone', () => {
  const app = useApp()
  let dir

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-phone-'))
    // Two months: May's rows fill more than a screen, April is below them.
    const specs = []
    for (let i = 0; i < 30; i += 1) {
      specs.push({name: `may-${String(i).padStart(2, '0')}.jpg`, width: 160, height: 120, taken: `2024:05:${String(30 - i).padStart(2, '0')} 10:00:00`})
    }
    specs.push({name: 'april-wide.jpg', width: 1200, height: 400, taken: '2024:04:20 10:00:00'})
    specs.push({name: 'april-tall.jpg', width: 300, height: 900, taken: '2024:04:10 10:00:00'})
    const token = app.server.token('mum')
    for (const photo of makePhotos(dir, specs)) await uploadDirect(app.server, token, photo.path)
  }, 60000)
  afterAll(() => fs.rmSync(dir, {recursive: true, force: true}))

  test('sign-in: the card, the fields and the button fit, and a tap signs in', async () => {
    const page = await app.newPage({phone: true, signedIn: false})
    const code = page.getByLabel('配对码')
    await code.waitFor()
    await expectNoSidewaysScroll(page)
    expect(await controlProblems(page, {
      '配对码': code,
      '设备名称': page.getByLabel('设备名称'),
      '登录': page.getByRole('button', {name: '登录'}),
    })).toEqual([])
    await app.shot(page, 'signin-phone')
    await code.fill(app.pairingCode())
    await page.getByRole('button', {name: '登录'}).tap()
    await page.getByRole('navigation').waitFor()
    await expectNoSidewaysScroll(page)
  })

  test('timeline: the grid fits the width, the scrubber is on the screen and a tap jumps', async () => {
    const page = await app.newPage({phone: true})
    await page.getByRole('heading', {name: /2024年5月/}).waitFor()
    await page.waitForFunction(() => {
      const images = [...document.querySelectorAll('img.thumb')]
      return images.length >= 6 && images.every(img => img.complete && img.naturalWidth > 0)
    })
    await expectNoSidewaysScroll(page)

    // Every cell in view is inside the grid's box; the cells of a row sit side by side.
    const grid = await rectOf(page.locator('.timeline-scroll'))
    const view = {left: 0, right: PHONE.viewport.width}
    expect(grid.left).toBeGreaterThanOrEqual(view.left)
    expect(grid.right).toBeLessThanOrEqual(view.right + EPSILON)
    const rows = await page.locator('.timeline-row').evaluateAll(els => els.map(row => [...row.children].map(cell => {
      const r = cell.getBoundingClientRect()
      return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}
    })))
    expect(rows.length).toBeGreaterThanOrEqual(3)
    const full = rows.filter(cells => cells.length === rows[0].length)
    expect(rows[0].length).toBeGreaterThanOrEqual(3) // columns of thumbnails, not a list
    for (const cells of full) {
      for (const cell of cells) {
        expect(cell.left).toBeGreaterThanOrEqual(grid.left - EPSILON)
        expect(cell.right).toBeLessThanOrEqual(grid.right + EPSILON)
        expect(cell.width).toBeGreaterThanOrEqual(72) // a thumbnail one can tell apart and tap
      }
      for (let i = 1; i < cells.length; i += 1) expect(cells[i].left).toBeGreaterThanOrEqual(cells[i - 1].right - EPSILON)
    }

    // The scrubber: beside the grid, not over it; its months readable in full and tappable.
    const scrubber = await rectOf(page.getByRole('group', {name: '按月份跳转'}))
    expect(overlapping(scrubber, grid)).toBe(false)
    expect(scrubber.right).toBeLessThanOrEqual(view.right + EPSILON)
    const months = {
      '跳到2024年5月': page.getByRole('button', {name: '跳到2024年5月'}),
      '跳到2024年4月': page.getByRole('button', {name: '跳到2024年4月'}),
    }
    expect(await controlProblems(page, months)).toEqual([])
    for (const locator of Object.values(months)) {
      const fits = await locator.evaluate(el => {
        const box = el.closest('.scrubber').getBoundingClientRect()
        const r = el.getBoundingClientRect()
        return el.scrollWidth <= el.clientWidth && r.left >= box.left - 0.5 && r.right <= box.right + 0.5
      })
      expect(fits).toBe(true)
    }
    const sideways = await page.locator('.scrubber').evaluate(el => el.scrollWidth - el.clientWidth)
    expect(sideways).toBeLessThanOrEqual(0)
    expect(await shortScrubberButtons(page)).toEqual({count: 2, short: []}) // a finger's height each
    // The upload panel, collapsed on a phone, covers none of the grid and the scrubber.
    const uploads = await rectOf(page.getByRole('complementary', {name: '上传'}))
    expect(overlapping(uploads, grid)).toBe(false)
    expect(overlapping(uploads, scrubber)).toBe(false)
    await app.shot(page, 'timeline-phone')

    expect(await page.getByRole('heading', {name: /2024年4月/}).count()).toBe(0) // below the screen
    await months['跳到2024年4月'].tap()
    const april = page.getByRole('heading', {name: /2024年4月/})
    await april.waitFor()
    // April is the last month: the grid scrolls to its end, April's heading and photos in view.
    await page.waitForFunction(() => {
      const scroll = document.querySelector('.timeline-scroll')
      const box = scroll.getBoundingClientRect()
      const heading = [...document.querySelectorAll('.timeline-heading')].find(h => h.textContent.includes('2024年4月'))
      const r = heading && heading.getBoundingClientRect()
      return scroll.scrollTop > 0 && r && r.top >= box.top && r.bottom <= box.bottom
    })
    await page.getByRole('button', {name: '照片 april-tall.jpg'}).waitFor()
    expect(await controlProblems(page, {
      'april-wide.jpg': page.getByRole('button', {name: '照片 april-wide.jpg'}),
      'april-tall.jpg': page.getByRole('button', {name: '照片 april-tall.jpg'}),
    })).toEqual([])
    await expectNoSidewaysScroll(page)
  })

  test('timeline: a scrubber of many years scrolls under a finger, its months a finger high, and a tap jumps', async () => {
    // Four years of a photo a month: far more months than the screen is high.
    const specs = []
    for (let year = 2021; year <= 2024; year += 1) {
      for (let month = 1; month <= 12; month += 1) {
        specs.push({name: `y${year}-${month}.jpg`, width: 96, height: 64, taken: `${year}:${String(month).padStart(2, '0')}:15 10:00:00`, seed: year * 100 + month})
      }
    }
    const token = app.server.token('aunt')
    for (const photo of makePhotos(dir, specs)) await uploadDirect(app.server, token, photo.path)
    const page = await app.newPage({phone: true, user: 'aunt'})
    await page.getByRole('heading', {name: /2024年12月/}).waitFor()
    const scrubber = page.getByRole('group', {name: '按月份跳转'})
    await expectNoSidewaysScroll(page)
    expect(await shortScrubberButtons(page)).toEqual({count: 48, short: []})
    const box = await rectOf(scrubber)
    // On the screen, clear of the collapsed upload panel, and no wider than its labels.
    expect(inside(box, {left: 0, top: 0, right: PHONE.viewport.width, bottom: PHONE.viewport.height})).toBe(true)
    expect(overlapping(box, await rectOf(page.getByRole('complementary', {name: '上传'})))).toBe(false)
    const sizes = await scrubber.evaluate(el => ({
      sideways: el.scrollWidth - el.clientWidth,
      longer: el.scrollHeight > el.clientHeight,
      cut: [...el.querySelectorAll('button')].filter(b => b.scrollWidth > b.clientWidth).length,
      fonts: [...new Set([...el.querySelectorAll('button')].map(b => parseFloat(getComputedStyle(b).fontSize) >= 12))],
    }))
    expect(sizes).toEqual({sideways: 0, longer: true, cut: 0, fonts: [true]})
    await app.shot(page, 'timeline-years-phone')

    // A finger's drag up the scrubber scrolls it, and jumps nowhere: the grid stays at the top.
    const x = Math.round(box.left + box.width / 2)
    await touchDrag(page, [x, Math.round(box.bottom - 40)], [x, Math.round(box.top + 40)])
    await page.waitForFunction(() => document.querySelector('.scrubber').scrollTop > 0)
    expect(await page.locator('.timeline-scroll').evaluate(el => el.scrollTop)).toBe(0)
    // Down to the oldest month, and a tap on it jumps there.
    const oldest = page.getByRole('button', {name: '跳到2021年1月'})
    await scrubber.evaluate(el => { el.scrollTop = el.scrollHeight })
    expect(await controlProblems(page, {'跳到2021年1月': oldest, '跳到2021年2月': page.getByRole('button', {name: '跳到2021年2月'})})).toEqual([])
    await oldest.tap()
    await page.getByRole('heading', {name: /2021年1月/}).waitFor()
    await page.getByRole('button', {name: '照片 y2021-1.jpg'}).waitFor()
  })

  test('lightbox: the photo and its controls fit the screen, apart; a swipe goes to the next photo', async () => {
    const page = await app.newPage({phone: true})
    await page.getByRole('button', {name: '跳到2024年4月'}).tap()
    await page.getByRole('button', {name: '照片 april-wide.jpg'}).tap()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    expect(await dialog.getAttribute('aria-label')).toBe('查看 april-wide.jpg')
    const photoLoaded = name => page.waitForFunction(alt => {
      const img = document.querySelector('.lightbox img')
      return img && img.alt === alt && img.complete && img.naturalWidth > 0
    }, name)
    await photoLoaded('april-wide.jpg')

    const view = {left: 0, top: 0, right: PHONE.viewport.width, bottom: PHONE.viewport.height}
    const controls = {
      '关闭': dialog.getByRole('button', {name: '关闭'}),
      '上一张': dialog.getByRole('button', {name: '上一张'}),
      '下一张': dialog.getByRole('button', {name: '下一张'}),
      '下载原图': dialog.getByRole('link', {name: '下载原图'}),
      '删除': dialog.getByRole('button', {name: '删除'}),
    }
    const checkLayout = async () => {
      await expectNoSidewaysScroll(page)
      expect(inside(await rectOf(dialog), view)).toBe(true)
      const photo = await rectOf(dialog.locator('img'))
      expect(inside(photo, view)).toBe(true)
      expect(await controlProblems(page, controls)).toEqual([])
      // The buttons do not cover the photo: it is shown whole.
      for (const [name, locator] of Object.entries(controls)) {
        expect([name, overlapping(await rectOf(locator), photo)]).toEqual([name, false])
      }
    }
    await checkLayout()
    await app.shot(page, 'lightbox-phone')

    // A swipe to the left, across the photo, shows the next one; to the right, back.
    const y = Math.round(PHONE.viewport.height / 2)
    await swipe(page, 280, 80, y)
    await page.waitForFunction(() => document.querySelector('.lightbox').getAttribute('aria-label') === '查看 april-tall.jpg')
    await photoLoaded('april-tall.jpg')
    await checkLayout()
    await swipe(page, 80, 280, y)
    await page.waitForFunction(() => document.querySelector('.lightbox').getAttribute('aria-label') === '查看 april-wide.jpg')

    await controls['关闭'].tap()
    await dialog.waitFor({state: 'detached'})
  })

  test('trash: the items and their actions fit; the confirmation too', async () => {
    const token = app.server.token('dad')
    const made = makePhotos(dir, [
      {name: 'a-rather-long-file-name-from-a-camera-20240601-103000.jpg', width: 200, height: 150, taken: '2024:06:01 10:30:00', seed: 71},
      {name: 'short.jpg', width: 200, height: 150, taken: '2024:06:02 10:00:00', seed: 72},
    ])
    for (const photo of made) {
      const id = (await uploadDirect(app.server, token, photo.path)).items[0].id
      expect(await apiStatus(app, 'DELETE', `/images/${id}`, token)).toBe(200)
    }
    const page = await app.newPage({phone: true, user: 'dad'})
    await page.getByRole('navigation').getByRole('link', {name: '回收站'}).tap()
    const items = page.locator('.trash-item')
    await page.getByRole('button', {name: '恢复 short.jpg'}).waitFor()
    await page.waitForFunction(() => [...document.querySelectorAll('.trash-thumb')].every(img => img.naturalWidth > 0))
    await expectNoSidewaysScroll(page)
    expect(await items.count()).toBe(2)
    for (let i = 0; i < 2; i += 1) {
      const item = items.nth(i)
      const box = await rectOf(item)
      const name = await rectOf(item.locator('.trash-name'))
      const restore = item.getByRole('button', {name: /^恢复 /})
      const purge = item.getByRole('button', {name: /^永久删除 /})
      expect(await controlProblems(page, {thumbnail: item.locator('.trash-thumb'), name: item.locator('.trash-name'), restore, purge})).toEqual([])
      for (const part of [name, await rectOf(restore), await rectOf(purge)]) expect(inside(part, box)).toBe(true)
      // the name's text stays in its box (cut short with an ellipsis), not under the buttons
      expect(await item.locator('.trash-name').evaluate(el => el.scrollWidth <= el.clientWidth)).toBe(true)
    }
    await app.shot(page, 'trash-phone')

    await page.getByRole('button', {name: '永久删除 short.jpg'}).tap()
    const confirm = page.getByRole('alertdialog')
    await confirm.waitFor()
    expect(await controlProblems(page, {
      '取消': confirm.getByRole('button', {name: '取消'}),
      '永久删除': confirm.getByRole('button', {name: '永久删除'}),
    })).toEqual([])
    expect(inside(await rectOf(confirm), {left: 0, top: 0, right: PHONE.viewport.width, bottom: PHONE.viewport.height})).toBe(true)
    await app.shot(page, 'trash-confirm-phone')
    await confirm.getByRole('button', {name: '取消'}).tap()
    await confirm.waitFor({state: 'detached'})
  })

  test('upload panel: the pickers labelled and on the screen, the panel within the width, its rows legible', async () => {
    const page = await app.newPage({phone: true, user: 'grandpa'})
    const panel = page.getByRole('complementary', {name: '上传'})
    await panel.waitFor()
    // Collapsed at first, to a head across the bottom of the screen; a tap opens it.
    expect(await page.getByLabel('选择照片或视频').isVisible()).toBe(false)
    const head = await rectOf(panel)
    expect(head.bottom).toBeCloseTo(PHONE.viewport.height, 0)
    expect(head.height).toBeLessThanOrEqual(72)
    await page.getByRole('button', {name: '展开上传面板'}).tap()
    const files = page.getByLabel('选择照片或视频')
    expect(await files.evaluate(el => el.tagName === 'INPUT' && el.type === 'file')).toBe(true)
    expect(await page.getByLabel('选择文件夹').evaluate(el => el.tagName === 'INPUT' && el.type === 'file')).toBe(true)
    expect(await controlProblems(page, {
      '选择照片或视频': page.locator('label[for="upload-files"]'),
      '选择文件夹': page.locator('label[for="upload-folder"]'),
      '收起': panel.locator('.uploads-toggle'),
    })).toEqual([])

    const picked = makePhotos(dir, [
      {name: 'IMG_20240601_103000_a_name_longer_than_the_screen_is_wide.jpg', width: 320, height: 240, seed: 91},
      {name: 'b.jpg', width: 320, height: 240, seed: 92},
    ]).map(p => p.path)
    await files.setInputFiles(picked)
    for (const name of ['b.jpg', 'IMG_20240601_103000_a_name']) {
      await page.locator('.uploads-queue li[data-state="stored"]', {hasText: name}).waitFor({timeout: 30000})
    }
    await expectNoSidewaysScroll(page)
    const view = {left: 0, top: 0, right: PHONE.viewport.width, bottom: PHONE.viewport.height}
    const box = await rectOf(panel)
    expect(inside(box, view)).toBe(true)
    expect(box.height).toBeLessThanOrEqual(PHONE.viewport.height * 0.6 + EPSILON) // the page stays in sight above it

    const rows = page.locator('.uploads-queue li')
    expect(await rows.count()).toBe(2)
    for (let i = 0; i < 2; i += 1) {
      const row = rows.nth(i)
      const rowBox = await rectOf(row)
      expect(inside(rowBox, box)).toBe(true)
      const parts = {name: row.locator('.upload-name'), size: row.locator('.upload-size'), state: row.locator('.upload-state')}
      const rects = {}
      for (const [part, locator] of Object.entries(parts)) {
        rects[part] = await rectOf(locator)
        expect([part, inside(rects[part], rowBox)]).toEqual([part, true])
        const {fontSize, overflowing} = await locator.evaluate(el => ({
          fontSize: parseFloat(getComputedStyle(el).fontSize),
          overflowing: el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).textOverflow !== 'ellipsis',
        }))
        expect([part, fontSize >= 12, overflowing]).toEqual([part, true, false])
      }
      expect(overlapping(rects.name, rects.size)).toBe(false)
      expect(rects.name.width).toBeGreaterThanOrEqual(120) // enough of a long name to know it
    }
    await app.shot(page, 'uploads-phone')

    // Collapsed again with the overall progress showing, it still leaves the grid clear.
    await page.getByRole('button', {name: '收起上传面板'}).tap()
    await page.getByRole('button', {name: '展开上传面板'}).waitFor()
    expect(await panel.locator('.uploads-overall').isVisible()).toBe(true)
    await page.locator('.timeline-scroll').waitFor()
    expect(overlapping(await rectOf(panel), await rectOf(page.locator('.timeline-scroll')))).toBe(false)
    await app.shot(page, 'uploads-collapsed-phone')
  })

  test('upload panel: after a reload mid-upload it opens by itself, the unfinished file in sight', async () => {
    const page = await app.newPage({phone: true, user: 'grandpa'})
    app.allowErrors(page, /ERR_INTERNET_DISCONNECTED/)
    // A real JPEG and two chunks more: the first chunk reaches the server, the rest wait
    // on a network that is gone, and the page is reloaded meanwhile.
    const [photo] = makePhotos(dir, [{name: 'cut-short-by-a-reload.jpg', width: 64, height: 48, seed: 93}])
    fs.appendFileSync(photo.path, crypto.randomBytes(2 * CHUNK))
    let patches = 0
    await page.route('**/api/v1/uploads/**', route => {
      if (route.request().method() === 'PATCH' && ++patches > 1) return route.abort('internetdisconnected')
      return route.continue()
    })
    await page.getByRole('button', {name: '展开上传面板'}).tap()
    await page.getByLabel('选择照片或视频').setInputFiles(photo.path)
    await page.waitForFunction(chunk => [...document.querySelectorAll('.uploads-queue li[data-state="uploading"] progress')]
      .some(bar => Number(bar.value) >= chunk), CHUNK)
    await page.reload()
    await page.unrouteAll()

    const panel = page.getByRole('complementary', {name: '上传'})
    const entry = page.locator('.upload-interrupted li', {hasText: 'cut-short-by-a-reload.jpg'})
    await entry.waitFor({state: 'attached'})
    const pct = Math.floor((100 * CHUNK) / fs.statSync(photo.path).size)
    await page.locator('.upload-interrupted li', {hasText: `已上传 ${pct}%`}).waitFor({state: 'attached'})
    // No tap: the panel is open, the entry and its 放弃 on the screen, within the sheet.
    expect(await panel.locator('.uploads-toggle').getAttribute('aria-expanded')).toBe('true')
    expect(await entry.isVisible()).toBe(true)
    expect(await page.getByRole('heading', {name: '上次未完成的上传'}).isVisible()).toBe(true)
    expect(await controlProblems(page, {
      name: entry.locator('.upload-name'),
      '放弃': entry.getByRole('button', {name: '放弃 cut-short-by-a-reload.jpg'}),
      '选择照片或视频': page.locator('label[for="upload-files"]'),
    })).toEqual([])
    const view = {left: 0, top: 0, right: PHONE.viewport.width, bottom: PHONE.viewport.height}
    const sheet = await rectOf(panel)
    expect(inside(sheet, view)).toBe(true)
    expect(inside(await rectOf(entry), sheet)).toBe(true)
    await expectNoSidewaysScroll(page)
    await app.shot(page, 'uploads-interrupted-phone')

    // Collapsed by hand, its head still says there is something unfinished.
    await page.getByRole('button', {name: '收起上传面板'}).tap()
    await page.getByRole('button', {name: '展开上传面板'}).waitFor()
    expect(await entry.isVisible()).toBe(false)
    const note = panel.locator('.uploads-head', {hasText: '1 个上传未完成'})
    expect(await note.isVisible()).toBe(true)
    expect(await note.evaluate(el => el.scrollWidth <= el.clientWidth)).toBe(true)
    expect(inside(await rectOf(panel), view)).toBe(true)
    await app.shot(page, 'uploads-interrupted-collapsed-phone')

    // Given up, it is gone, and a reload starts collapsed again.
    await page.getByRole('button', {name: '展开上传面板'}).tap()
    await entry.getByRole('button', {name: '放弃 cut-short-by-a-reload.jpg'}).tap()
    await entry.waitFor({state: 'detached'})
    await page.reload()
    await page.getByRole('button', {name: '展开上传面板'}).waitFor()
    expect(await panel.locator('.uploads-unfinished').count()).toBe(0)
  })
})
