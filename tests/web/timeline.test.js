/** @jest-environment node */
// The timeline: thumbnails from signed URLs, month headings, the scrubber, live updates.
const fs = require('fs')
const os = require('os')
const path = require('path')
const {describeWeb, useApp} = require('./harness')
const {makePhotos, uploadDirect} = require('../miniprogram/kit/server')

describeWeb('timeline', () => {
  const app = useApp()
  let dir

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-timeline-'))
  })
  afterAll(() => fs.rmSync(dir, {recursive: true, force: true}))

  async function upload(user, specs) {
    const token = app.server.token(user)
    const made = makePhotos(dir, specs)
    const out = []
    for (const photo of made) out.push(await uploadDirect(app.server, token, photo.path))
    return out
  }

  test('an empty library says so', async () => {
    const page = await app.newPage({user: 'grandpa'})
    await page.getByText('还没有照片').waitFor()
    await app.shot(page, 'empty-library')
  })

  test('thumbnails render under headings of their months; the scrubber jumps', async () => {
    const specs = []
    for (let i = 0; i < 3; i += 1) specs.push({name: `april-${i}.jpg`, width: 320, height: 240, taken: `2024:04:0${i + 1} 10:00:00`})
    for (let i = 0; i < 40; i += 1) specs.push({name: `march-${i}.jpg`, width: 96, height: 64, taken: `2024:03:${String((i % 28) + 1).padStart(2, '0')} 09:00:00`})
    for (let i = 0; i < 2; i += 1) specs.push({name: `old-${i}.jpg`, width: 96, height: 64, taken: `2019:08:0${i + 1} 09:00:00`})
    await upload('mum', specs)

    const page = await app.newPage({viewport: {width: 900, height: 700}})
    await page.getByRole('heading', {name: /2024年4月/}).waitFor()
    await page.getByRole('heading', {name: /2024年3月/}).waitFor()
    // The first screen's thumbnails are real pictures, loaded by signed URL, and the
    // page says so (the bench's mark, set by the last one's load event: an image is
    // `complete` a moment before its handler runs).
    await page.waitForFunction(() => {
      const images = [...document.querySelectorAll('img.thumb')]
      return images.length >= 3 && images.every(img => img.complete && img.naturalWidth > 0) &&
        performance.getEntriesByName('tubei:timeline-painted').length > 0
    })
    expect(await page.evaluate(() => performance.getEntriesByName('tubei:timeline-painted').length)).toBe(1)
    const src = await page.locator('img.thumb').first().getAttribute('src')
    expect(src).toMatch(/\/thumbnail\?.*(sig|expires)/)
    await app.shot(page, 'timeline')

    // Not every row is in the DOM: the 2019 month is far below, until the scrubber goes there.
    expect(await page.getByRole('heading', {name: /2019年8月/}).count()).toBe(0)
    await page.getByRole('button', {name: '跳到2019年8月'}).click()
    await page.getByRole('heading', {name: /2019年8月/}).waitFor()
    await page.waitForFunction(() => [...document.querySelectorAll('img.thumb')].some(img => img.naturalWidth > 0 && img.getBoundingClientRect().top > 0))

    // Keyboard: the cells are buttons with names, reachable with Tab.
    const first = page.getByRole('button', {name: /^照片 /}).first()
    await first.focus()
    expect(await page.evaluate(() => document.activeElement.classList.contains('cell'))).toBe(true)
  })

  test('the rows beyond the first screen wait for it; a thumbnail scrolled away before it loaded is not fetched any longer', async () => {
    const specs = []
    for (let i = 0; i < 40; i += 1) specs.push({name: `far-${i}.jpg`, width: 96, height: 64, taken: `2023:06:${String((i % 28) + 1).padStart(2, '0')} 09:00:00`})
    specs.push({name: 'far-old.jpg', width: 96, height: 64, taken: '2018:02:01 09:00:00'})
    await upload('aunt', specs)

    // A slow network: the first screen's thumbnails are asked for and not answered. The
    // route is in place before the sign-in shows the timeline, so that none gets past it.
    const page = await app.newPage({signedIn: false, viewport: {width: 420, height: 320}})
    const held = []
    const cancelled = new Set()
    page.on('requestfailed', request => cancelled.add(request.url()))
    let holding = true
    await page.route('**/thumbnail?**', route => (holding ? held.push(route) : route.continue()))
    await app.signIn(page, {user: 'aunt'})
    await page.getByRole('heading', {name: /2023年6月/}).waitFor()
    // The screen's own cells (rows beyond it wait until it has loaded, which it never does).
    await page.waitForFunction(() => document.querySelectorAll('img.thumb').length >= 3)
    const shown = await page.evaluate(() => document.querySelectorAll('img.thumb').length)
    // Until the screen has loaded, no row beyond it is in the DOM to ask for its own.
    const beyond = await page.evaluate(() => {
      const box = document.querySelector('.timeline-scroll').getBoundingClientRect()
      return [...document.querySelectorAll('img.thumb')].filter(img => {
        const r = img.getBoundingClientRect()
        return r.top >= box.bottom || r.bottom <= box.top
      }).length
    })
    expect(beyond).toBe(0)
    for (let i = 0; i < 300 && held.length < shown; i += 1) await page.waitForTimeout(100)
    expect(held.length).toBeGreaterThanOrEqual(shown)
    const first = held.map(route => route.request().url())

    // Far away, their cells leave the DOM while their requests are still open.
    holding = false
    await page.getByRole('button', {name: '跳到2018年2月'}).click()
    await page.getByRole('heading', {name: /2018年2月/}).waitFor()
    await page.getByRole('heading', {name: /2023年6月/}).waitFor({state: 'detached'})
    await page.waitForFunction(() => [...document.querySelectorAll('img.thumb')].some(img => img.naturalWidth > 0))
    expect(await page.evaluate(urls => [...document.images].filter(img => urls.includes(img.src)).length, first)).toBe(0)
    const open = () => first.filter(url => !cancelled.has(url))
    for (let i = 0; i < 100 && open().length; i += 1) await page.waitForTimeout(100)
    expect(open()).toEqual([])
  })

  test('a photo uploaded elsewhere appears live', async () => {
    const page = await app.newPage({user: 'dad'})
    await page.getByText('还没有照片').waitFor()
    await upload('dad', [{name: 'live-new.jpg', width: 120, height: 90, taken: '2025:01:05 08:00:00'}])
    await page.getByRole('heading', {name: /2025年1月/}).waitFor()
    await page.waitForFunction(() => [...document.querySelectorAll('img.thumb')].some(img => img.naturalWidth > 0))
  })
})
