/** @jest-environment node */
// Uploading from the browser: files hashed, checked, sent with tus to a real server;
// progress seen rising; a cut network and a reload resumed from the server's offset,
// the stored bytes equal to the file's; what the server has, and what is not media,
// never sent; a folder picked whole.
const crypto = require('crypto')
const fs = require('fs')
const os = require('os')
const path = require('path')
const {execFileSync} = require('child_process')
const {describeWeb, useApp, sessionOf} = require('./harness')
const {makePhotos, uploadDirect, PYTHON, ROOT} = require('../miniprogram/kit/server')

const MiB = 1024 * 1024
const CHUNK = 8 * MiB // web/src/upload/settings.js CHUNK_SIZE

let dir
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-web-upload-'))
})
afterAll(() => fs.rmSync(dir, {recursive: true, force: true}))

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

// A real JPEG followed by `mib` MiB of random bytes: media to the server, any size.
function bigJpeg(name, mib, seed) {
  const [photo] = makePhotos(dir, [{name, width: 64, height: 48, seed}])
  const out = fs.openSync(photo.path, 'a')
  for (let i = 0; i < mib; i += 1) fs.writeSync(out, crypto.randomBytes(MiB))
  fs.closeSync(out)
  return photo.path
}

function photos(prefix, count, subdir = '') {
  const at = path.join(dir, subdir)
  fs.mkdirSync(at, {recursive: true})
  return makePhotos(at, Array.from({length: count}, (_, i) => ({
    name: `${prefix}${String(i + 1).padStart(2, '0')}.jpg`, width: 320, height: 240, seed: 1000 + i + [...prefix].reduce((n, c) => n * 31 + c.charCodeAt(0), 0) % 100000,
  }))).map(p => p.path)
}

// The uploads the server's catalog holds for anyone (tus creations, finished or not).
function uploadsOnServer(app) {
  return Number(execFileSync(PYTHON, ['-c',
    'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from uploads").fetchone()[0])',
    path.join(app.server.data, 'catalog.sqlite3')], {cwd: ROOT, encoding: 'utf8'}).trim())
}

async function api(app, page, apiPath, options = {}) {
  const {token} = await sessionOf(page)
  return fetch(`${app.url}/api/v1${apiPath}`, {...options, headers: {Authorization: `Bearer ${token}`, ...options.headers}})
}

async function present(app, page, shas) {
  const answer = await api(app, page, '/images/check', {
    method: 'POST', body: JSON.stringify({sha256: shas}), headers: {'Content-Type': 'application/json'},
  })
  return (await answer.json()).present
}

// Every tus request the page makes, with the headers that say where it resumes.
function recordTus(page) {
  const seen = []
  page.on('request', request => {
    if (!request.url().includes('/api/v1/uploads/')) return
    const headers = request.headers()
    seen.push({method: request.method(), url: request.url(), offset: headers['upload-offset']})
  })
  return seen
}

const row = (page, name) => page.locator('.uploads-queue li', {hasText: name})
const waitState = (page, name, state, timeout = 30000) =>
  page.locator(`.uploads-queue li[data-state="${state}"]`, {hasText: name}).waitFor({timeout})

describeWeb('uploads', () => {
  const app = useApp()

  test('20 files, one of 100 MB: progress rises, every file is stored', async () => {
    const page = await app.newPage()
    const files = [...photos('IMG_', 19), bigJpeg('big video-sized.jpg', 100, 7)]
    // The big file's progress bar, every value it takes, seen from inside the page.
    await page.evaluate(() => {
      window.seenProgress = []
      new MutationObserver(() => {
        const bar = [...document.querySelectorAll('.uploads-queue li')]
          .find(li => li.textContent.includes('big video-sized.jpg'))
        const overall = document.querySelector('.uploads-overall')
        if (bar) window.seenProgress.push({state: bar.dataset.state, value: Number(bar.querySelector('progress').value),
          overall: overall ? Number(overall.value) : 0})
      }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true})
    })
    await page.getByLabel('选择照片或视频').setInputFiles(files)
    const big = page.locator('.uploads-queue li[data-state="uploading"]', {hasText: 'big video-sized.jpg'})
    await big.waitFor()
    await big.scrollIntoViewIfNeeded()
    await app.shot(page, 'upload-progress')
    for (const file of files) await waitState(page, path.basename(file), 'stored', 60000)
    await page.locator('.uploads-summary', {hasText: '20 / 20 个文件'}).waitFor()
    await app.shot(page, 'upload-done')

    const seen = await page.evaluate(() => window.seenProgress)
    const size = fs.statSync(files[19]).size
    const midway = seen.filter(s => s.state === 'uploading' && s.value > 0 && s.value < size)
    expect(midway.length).toBeGreaterThan(1)
    const values = midway.map(s => s.value)
    expect(values).toEqual([...values].sort((a, b) => a - b)) // never goes back
    expect(new Set(seen.map(s => s.overall)).size).toBeGreaterThan(3)
    const shas = files.map(sha256)
    expect((await present(app, page, shas)).sort()).toEqual([...shas].sort())
    expect(await page.locator('.uploads-overall').getAttribute('value')).toBe(
      await page.locator('.uploads-overall').getAttribute('max'))
  })

  test('a cut network: the file waits for it; 重试 resumes from the server offset, byte-exact', async () => {
    const page = await app.newPage()
    const file = bigJpeg('cut.jpg', 2 * CHUNK / MiB - 1, 8)
    const requests = recordTus(page)
    app.allowErrors(page, /ERR_INTERNET_DISCONNECTED/)
    let patches = 0
    let cut = true
    await page.route('**/api/v1/uploads/**', route => {
      if (route.request().method() === 'PATCH') {
        patches += 1
        if (patches > 1 && cut) return route.abort('internetdisconnected')
      }
      return route.continue()
    })
    await page.getByLabel('选择照片或视频').setInputFiles(file)
    // tus-js-client tries again (RETRY_DELAYS) and then gives up: the file waits for the
    // network (it would go again by itself later); 重试 sends it at once.
    await waitState(page, 'cut.jpg', 'offline')
    expect(await row(page, 'cut.jpg').textContent()).toContain('等待网络')
    cut = false
    await page.unrouteAll()
    const before = requests.length
    await page.getByRole('button', {name: '重试 cut.jpg'}).click()
    await waitState(page, 'cut.jpg', 'stored')

    const again = requests.slice(before)
    expect(again.filter(r => r.method === 'POST')).toEqual([]) // the same upload, no new one
    expect(again[0].method).toBe('HEAD')
    const resumed = again.find(r => r.method === 'PATCH')
    expect(Number(resumed.offset)).toBe(CHUNK)
    const original = await api(app, page, `/images/${sha256(file)}/original`)
    const body = Buffer.from(await original.arrayBuffer())
    expect(crypto.createHash('sha256').update(body).digest('hex')).toBe(sha256(file))
    expect(body.length).toBe(fs.statSync(file).size)
  })

  test('offline mid-upload, then online: it carries on by itself from the server offset, byte-exact', async () => {
    const page = await app.newPage()
    const file = bigJpeg('offline.jpg', 4 * CHUNK / MiB, 10)
    const requests = recordTus(page)
    app.allowErrors(page, /ERR_INTERNET_DISCONNECTED/)
    // The second PATCH is held until the browser is offline, so the network goes away
    // mid-upload however fast this machine is; it then goes on into an offline browser.
    let patches = 0
    let offline
    const wentOffline = new Promise(resolve => { offline = resolve })
    await page.route('**/api/v1/uploads/**', async route => {
      if (route.request().method() === 'PATCH' && ++patches === 2) await wentOffline
      return route.continue()
    })
    const firstChunk = page.waitForResponse(response =>
      response.request().method() === 'PATCH' && response.status() === 204)
    await page.getByLabel('选择照片或视频').setInputFiles(file)
    await firstChunk
    await page.context().setOffline(true)
    offline()
    await waitState(page, 'offline.jpg', 'offline')
    expect(await row(page, 'offline.jpg').textContent()).toContain('等待网络')
    await app.shot(page, 'upload-offline')
    await page.unrouteAll()
    const before = requests.length
    // What the server holds of it, asked from here: where the page must carry on.
    const {token} = await sessionOf(page)
    const held = await fetch(requests.find(r => r.method === 'PATCH').url, {
      method: 'HEAD', headers: {'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}`},
    })
    const offset = Number(held.headers.get('Upload-Offset'))
    expect(offset).toBeGreaterThanOrEqual(CHUNK)
    expect(offset).toBeLessThan(fs.statSync(file).size)

    await page.context().setOffline(false) // no click: the online event sends it again
    await waitState(page, 'offline.jpg', 'stored', 60000)
    const again = requests.slice(before)
    expect(again.filter(r => r.method === 'POST')).toEqual([]) // the same upload, no new one
    expect(again[0].method).toBe('HEAD')
    expect(Number(again.find(r => r.method === 'PATCH').offset)).toBe(offset)
    const original = await api(app, page, `/images/${sha256(file)}/original`)
    const body = Buffer.from(await original.arrayBuffer())
    expect(crypto.createHash('sha256').update(body).digest('hex')).toBe(sha256(file))
    expect(body.length).toBe(fs.statSync(file).size)
  })

  test('what the server refused stays failed when the network comes back', async () => {
    const page = await app.newPage()
    app.allowErrors(page, /status of 415/)
    const fake = path.join(dir, 'not-a-photo.jpg')
    fs.writeFileSync(fake, crypto.randomBytes(64 * 1024))
    await page.getByLabel('选择照片或视频').setInputFiles(fake)
    await waitState(page, 'not-a-photo.jpg', 'failed')
    expect(await row(page, 'not-a-photo.jpg').textContent()).toContain('不是照片或视频')
    const requests = recordTus(page)
    await page.context().setOffline(true)
    await page.context().setOffline(false)
    // A file the network dropped meanwhile is sent again; the refused one is not.
    const [photo] = photos('BACKONLINE_', 1)
    await page.getByLabel('选择照片或视频').setInputFiles(photo)
    await waitState(page, path.basename(photo), 'stored')
    expect(await page.locator('.uploads-queue li[data-state="failed"]', {hasText: 'not-a-photo.jpg'}).count()).toBe(1)
    expect(requests.filter(r => r.method === 'POST')).toHaveLength(1)
  })

  test('what the server has is checked, marked 已存在 and never sent', async () => {
    const page = await app.newPage()
    const [there, alsoThere] = photos('THERE_', 2)
    const {token} = await sessionOf(page)
    await uploadDirect(app.server, token, there)
    await uploadDirect(app.server, token, alsoThere)
    const requests = recordTus(page)
    const uploadsBefore = uploadsOnServer(app)
    await page.getByLabel('选择照片或视频').setInputFiles([there, alsoThere])
    await waitState(page, path.basename(there), 'exists')
    await waitState(page, path.basename(alsoThere), 'exists')
    expect(await row(page, path.basename(there)).textContent()).toContain('已存在')
    expect(requests).toEqual([])
    expect(uploadsOnServer(app)).toBe(uploadsBefore)
  })

  test('a reload mid-upload is remembered; picking the file again resumes it', async () => {
    const page = await app.newPage()
    const file = bigJpeg('reload.jpg', 2 * CHUNK / MiB - 1, 9)
    app.allowErrors(page, /ERR_INTERNET_DISCONNECTED/)
    let patches = 0
    // The first chunk reaches the server; the rest wait on a network that is gone.
    await page.route('**/api/v1/uploads/**', route => {
      if (route.request().method() === 'PATCH' && ++patches > 1) return route.abort('internetdisconnected')
      return route.continue()
    })
    await page.getByLabel('选择照片或视频').setInputFiles(file)
    await page.locator('.uploads-queue li', {hasText: 'reload.jpg'}).waitFor()
    await page.waitForFunction(() => [...document.querySelectorAll('.uploads-queue li[data-state="uploading"] progress')]
      .some(bar => Number(bar.value) >= 8 * 1024 * 1024))
    await page.reload()
    await page.unrouteAll()

    const interrupted = page.locator('.upload-interrupted li', {hasText: 'reload.jpg'})
    await interrupted.waitFor()
    const pct = Math.floor((100 * CHUNK) / fs.statSync(file).size)
    await page.locator('.upload-interrupted li', {hasText: `已上传 ${pct}%`}).waitFor()
    await app.shot(page, 'upload-interrupted')
    const requests = recordTus(page)
    await page.getByLabel('选择照片或视频').setInputFiles(file)
    await waitState(page, 'reload.jpg', 'stored')
    expect(await interrupted.count()).toBe(0)
    expect(requests.filter(r => r.method === 'POST')).toEqual([])
    expect(Number(requests.find(r => r.method === 'PATCH').offset)).toBe(CHUNK)
    expect(await row(page, 'reload.jpg').textContent()).toContain('已备份')
    expect(await present(app, page, [sha256(file)])).toEqual([sha256(file)])
    // nothing is left to resume after a reload
    await page.reload()
    await page.getByLabel('选择照片或视频').waitFor({state: 'attached'})
    expect(await page.evaluate(() => Object.keys(localStorage).filter(k => k.startsWith('tus::') ||
      k === 'tubei.uploads.unfinished'))).toEqual([])
  })

  test('signing out stops the uploads and forgets the unfinished ones', async () => {
    const page = await app.newPage()
    app.allowErrors(page, /ERR_INTERNET_DISCONNECTED/)
    const [photo] = photos('SIGNOUT_', 1)
    await page.route('**/api/v1/uploads/**', route =>
      (route.request().method() === 'PATCH' ? route.abort('internetdisconnected') : route.continue()))
    await page.getByLabel('选择照片或视频').setInputFiles(photo)
    await page.waitForFunction(() => Object.keys(localStorage).some(k => k.startsWith('tus::')))
    const remembered = () => page.evaluate(() => Object.keys(localStorage)
      .filter(k => k.startsWith('tus::') || k === 'tubei.uploads.unfinished'))
    expect((await remembered()).length).toBe(2)
    await page.getByRole('button', {name: '退出登录'}).click()
    await page.getByLabel('配对码').waitFor()
    expect(await remembered()).toEqual([])
  })

  test('a folder: its photos go up with their paths, what is not media is skipped', async () => {
    const page = await app.newPage()
    const album = path.join(dir, 'Trip')
    photos('day1_', 2, 'Trip/Day 1')
    photos('day2_', 1, 'Trip')
    fs.writeFileSync(path.join(album, 'notes.txt'), 'the hotel was by the sea\n')
    const requests = recordTus(page)
    await page.getByLabel('选择文件夹').setInputFiles(album)
    await waitState(page, 'Trip/Day 1/day1_01.jpg', 'stored')
    await waitState(page, 'Trip/Day 1/day1_02.jpg', 'stored')
    await waitState(page, 'Trip/day2_01.jpg', 'stored')
    await waitState(page, 'Trip/notes.txt', 'skipped')
    expect(await row(page, 'notes.txt').textContent()).toContain('已跳过')
    expect(requests.filter(r => r.method === 'POST')).toHaveLength(3)
  })

  test('files dropped on the page are added; the panel works from the keyboard', async () => {
    const page = await app.newPage()
    await page.evaluate(async () => {
      const canvas = document.createElement('canvas')
      canvas.width = 40
      canvas.height = 30
      const ctx = canvas.getContext('2d')
      ctx.fillStyle = '#3a7'
      ctx.fillRect(0, 0, 40, 30)
      const blob = await new Promise(resolve => canvas.toBlob(resolve, 'image/jpeg'))
      const transfer = new DataTransfer()
      transfer.items.add(new File([blob], 'dropped.jpg', {type: 'image/jpeg'}))
      transfer.items.add(new File(['just text'], 'readme.md', {type: 'text/markdown'}))
      for (const type of ['dragenter', 'dragover', 'drop']) {
        document.querySelector('main').dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}))
      }
    })
    await waitState(page, 'dropped.jpg', 'stored')
    await waitState(page, 'readme.md', 'skipped')

    // keyboard: Tab reaches the file picker; the toggle collapses and expands the panel
    const picker = page.getByLabel('选择照片或视频')
    await picker.focus()
    expect(await page.evaluate(() => document.activeElement.id)).toBe('upload-files')
    const toggle = page.getByRole('button', {name: '收起上传面板'})
    await toggle.focus()
    await page.keyboard.press('Enter')
    await page.getByRole('button', {name: '展开上传面板'}).waitFor()
    expect(await picker.isVisible()).toBe(false)
    await page.keyboard.press('Enter')
    await page.getByRole('button', {name: '清除已完成'}).click()
    await page.locator('.uploads-queue').waitFor({state: 'detached'})
  })
})
