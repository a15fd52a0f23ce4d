// scripts/preview's worker: every page in its main states, as PNG files.
//   node tests/miniprogram/preview/run.js OUTDIR
// The pages run with the tests' `wx` kit against a real `python -m server` (a temp data
// folder), driven through real flows: pairing by QR code, choosing photos that go up
// over real HTTP (one already on the server, one cut off mid-way), thumbnails the kit
// downloads. Each state's rendered tree becomes HTML (html.js) and headless Chromium
// (Debian's, through playwright-core) takes a 375x812 @2x screenshot of it.
const {execFileSync} = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const ROOT = path.resolve(__dirname, '../../..')
const MINIPROGRAM = path.join(ROOT, 'miniprogram')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'

// miniprogram-simulate needs a DOM; outside jest, jsdom's window supplies one.
function installDom() {
  const jsdomPath = require.resolve('jsdom', {paths: [path.dirname(require.resolve('jest-environment-jsdom'))]})
  const {JSDOM} = require(jsdomPath)
  const {window} = new JSDOM('<!doctype html><html><body></body></html>', {pretendToBeVisual: true})
  for (const key of Object.getOwnPropertyNames(window)) {
    if (key in global || key.startsWith('_')) continue
    try {
      global[key] = window[key]
    } catch (e) {
      // read-only on Node's global: Node's own is fine
    }
  }
  // simulate dispatches jsdom events: the constructors must be jsdom's.
  Object.assign(global, {window, document: window.document, Event: window.Event,
    CustomEvent: window.CustomEvent, EventTarget: window.EventTarget})
}

installDom()
const {createKit} = require('../kit/wx')
const {startServer, uploadDirect, PYTHON} = require('../kit/server')
const {loadPage, until} = require('../kit/pages')
const {pageHtml, imageResolver, PHONE} = require('./html')
const events = require('../../../miniprogram/utils/events')
const api = require('../../../miniprogram/utils/request')

const ROUTES = {
  backup: 'pages/backup/backup',
  gallery: 'pages/gallery/gallery',
  settings: 'pages/settings/settings',
  trash: 'pages/trash/trash',
}

const SCENES = ['sunset', 'mountains', 'meadow', 'city', 'flowers', 'beach', 'lake', 'autumn']

function makePhotos(dir, count) {
  const specs = Array.from({length: count}, (_, i) => {
    const portrait = i % 5 === 3
    const stamp = `202406${String(1 + (i % 28)).padStart(2, '0')}_${String(90000 + i * 1371).slice(-6)}`
    return {
      path: path.join(dir, `IMG_${stamp}.jpg`),
      scene: SCENES[i % SCENES.length],
      taken: `2024:06:${String(1 + (i % 28)).padStart(2, '0')} ${String(8 + (i % 12)).padStart(2, '0')}:${String((i * 7) % 60).padStart(2, '0')}:00`,
      seed: 100 + i,
      width: portrait ? 1200 : 1600,
      height: portrait ? 1600 : 1200,
    }
  })
  execFileSync(PYTHON, [path.join(__dirname, 'photos.py'), JSON.stringify(specs)], {cwd: ROOT})
  return specs.map(s => ({path: s.path, width: s.width, height: s.height}))
}

function log(message) {
  process.stderr.write(`${message}\n`)
}

// resolveImage: html.js's, applied as each state is taken (a restart later deletes
// the temp files the earlier states show).
async function collectStates(tmp, resolveImage) {
  // WeChat suspends after ~5 s in the background; the previews do not wait that long.
  const kit = createKit({tmpDir: tmp, suspendAfter: 300, socketsCloseAfter: 500})
  global.wx = kit.wx
  const server = await startServer()
  const states = [] // {name, route, tree, what}
  // page: a loaded page (its tree now) or a tree captured earlier.
  const snap = (name, page, route, what) => {
    const tree = page.toJSON ? page.toJSON() : page
    states.push({name, route, what, html: pageHtml({root: MINIPROGRAM, route, tree, resolveImage})})
    log(`  ${name}: ${what}`)
  }
  try {
    const photos = makePhotos(tmp, 16)

    // --- a phone that was never paired ---------------------------------------------
    const settings = loadPage('settings')
    settings.instance.onLoad()
    await settings.instance.onShow()
    snap('settings-unpaired', settings, ROUTES.settings, 'settings, never paired: address and code form, scan button')

    const backup0 = loadPage('backup')
    backup0.instance.onLoad()
    backup0.instance.onShow()
    snap('backup-unpaired', backup0, ROUTES.backup, 'backup before pairing: a way to the settings')
    backup0.instance.onUnload()

    const gallery0 = loadPage('gallery')
    await gallery0.instance.onLoad()
    snap('gallery-unpaired', gallery0, ROUTES.gallery, 'gallery before pairing')
    gallery0.instance.onUnload()

    // --- paired once, but the server is off now ---------------------------------------
    kit.wx.setStorageSync(api.KEY_SERVER, 'http://127.0.0.1:9') // discard port: nothing listens
    kit.wx.setStorageSync(api.KEY_TOKEN, server.token('mum'))
    const offline = loadPage('settings')
    offline.instance.onLoad()
    await offline.instance.onShow()
    if (offline.data.status !== 'unreachable') throw new Error(`expected unreachable, got ${offline.data.status}`)
    snap('settings-unreachable', offline, ROUTES.settings, 'settings when the paired server does not answer')
    kit.storage.clear()

    // --- pair for real: scan the QR code `python -m server pair` prints ---------------
    kit.ui.scanResult = server.pairingCode('mum')
    const pairing = loadPage('settings')
    pairing.instance.onLoad()
    await pairing.instance.onShow()
    pairing.instance.scan()
    await until(() => pairing.data.status === 'paired', {what: 'paired'})
    snap('settings-paired', pairing, ROUTES.settings, 'settings after scanning the pairing QR code')

    const gallery1 = loadPage('gallery')
    await gallery1.instance.onLoad()
    await until(() => gallery1.data.done, {what: 'empty gallery loaded'})
    snap('gallery-empty', gallery1, ROUTES.gallery, 'gallery of a server with no photos yet')
    gallery1.instance.onUnload()

    // --- back up 8 photos: 2 already on the server, 1 cut off mid-way -----------------
    const token = server.token('mum')
    const chosen = photos.slice(0, 8)
    await uploadDirect(server, token, chosen[2].path)
    await uploadDirect(server, token, chosen[5].path)
    const failing = chosen[6]
    const failingBytes = fs.readFileSync(failing.path)
    const realUpload = kit.wx.uploadFile
    kit.wx.uploadFile = options => {
      const task = realUpload(options)
      // The page sends a named copy of the pick: know the photo by its bytes.
      if (fs.readFileSync(options.filePath).equals(failingBytes)) {
        let cut = false
        task.onProgressUpdate(({progress}) => {
          if (progress >= 40 && !cut) {
            cut = true
            task.abort() // the connection drops: uploadFile:fail
          }
        })
      }
      return task
    }

    const backup = loadPage('backup')
    backup.instance.onLoad()
    backup.instance.onShow()
    snap('backup-empty', backup, ROUTES.backup, 'backup, paired, nothing chosen yet')

    // Watch every render of the real upload and keep the most telling moments.
    let queued = null
    let uploading = null
    let uploadingScore = -1
    const setData = backup.instance.setData.bind(backup.instance)
    backup.instance.setData = (data, callback) => {
      setData(data, callback)
      const items = backup.data.items
      if (items.length !== chosen.length) return
      const count = state => items.filter(i => i.state === state).length
      if (!count('hashing') && !count('uploading') && !count('done')) queued = backup.toJSON()
      const midway = items.filter(i => i.state === 'uploading' && i.progress >= 12 && i.progress <= 88)
      const spread = new Set(midway.map(i => Math.round(i.progress / 10))).size
      const score = midway.length * 10 + spread * 4 + (count('done') ? 6 : 0) + (count('waiting') ? 3 : 0) -
        (count('failed') ? 20 : 0)
      if (score > uploadingScore) {
        uploadingScore = score
        uploading = backup.toJSON()
      }
    }
    kit.media = chosen.slice()
    await backup.instance.choose()
    backup.instance.setData = setData
    if (!queued || !uploading) throw new Error('the upload went by without a queued or uploading render')
    snap('backup-queued', queued, ROUTES.backup, 'photos chosen and checked: 2 already on the server, 6 waiting')
    snap('backup-uploading', uploading, ROUTES.backup, 'uploading: progress bars mid-way (a render of the real upload)')
    const failed = backup.data.items.filter(i => i.state === 'failed')
    if (failed.length !== 1) throw new Error(`expected one failed photo, got ${failed.length}`)
    snap('backup-done', backup, ROUTES.backup, `done: "${backup.data.summary}", one failed with a retry`)
    kit.wx.uploadFile = realUpload
    backup.instance.onUnload()

    // --- the gallery full: more photos from "another phone" ---------------------------
    for (const photo of photos.slice(8)) await uploadDirect(server, token, photo.path)
    const gallery = loadPage('gallery')
    await gallery.instance.onLoad()
    await until(() => gallery.data.images.every(i => i.thumb), {what: 'thumbnails'})
    // 7 backed up + 8 more, 3 of which go to the trash here: 12 left.
    for (const image of gallery.data.images.slice(4, 7)) await gallery.instance.remove(image)
    snap('gallery-undo', gallery, ROUTES.gallery, 'gallery just after a delete: the undo toast')
    clearTimeout(gallery.instance.undoTimer)
    gallery.setData({undo: null})
    snap('gallery-full', gallery, ROUTES.gallery, `gallery: ${gallery.data.images.length} real thumbnails from the server`)
    gallery.instance.onUnload()

    const trash = loadPage('trash')
    await trash.instance.onLoad()
    snap('trash', trash, ROUTES.trash, `trash: ${trash.data.images.length} deleted photos to restore or delete`)

    await phoneStates({kit, server, tmp, snap})
  } finally {
    events.close()
    await server.stop()
  }
  return states
}

// The states a real phone brings: the background, the privacy agreement, originals
// that lost their EXIF and chat files, a restart that lost its temp files, an address
// on another subnet.
async function phoneStates({kit, server, tmp, snap}) {
  kit.launch(path.join(MINIPROGRAM, 'app.js'))
  const extra = makePhotos(tmp, 24).slice(16) // 8 more, unlike the first 16
  const big = extra.slice(0, 4)

  // --- a backup sent to the background: paused, with the banner -----------------------
  kit.privacy.agreed = true
  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  Object.assign(backup.instance.uploader, {threshold: 256 * 1024, chunkSize: 128 * 1024})
  kit.uplink = 1024 * 1024
  kit.media = big.slice()
  const backingUp = backup.instance.choose()
  await until(() => backup.data.items.length === 4 && backup.data.items.some(i => i.state === 'uploading' && i.progress >= 20) &&
    backup.data.items.some(i => i.state === 'waiting'), {what: 'uploads under way'})
  await kit.background()
  await until(() => backup.data.items.some(i => i.state === 'paused'), {what: 'paused'})
  snap('backup-background', backup, ROUTES.backup, 'sent to the background mid-backup: paused, the banner asks to stay in front')
  kit.foreground()
  await backingUp
  kit.uplink = null
  backup.instance.onUnload()

  // --- the privacy agreement, asked on the page ---------------------------------------
  kit.privacy.agreed = false
  const asking = loadPage('backup')
  asking.instance.onLoad()
  asking.instance.onShow()
  kit.media = [extra[4]]
  const choosing = asking.instance.choose()
  await until(() => asking.data.privacy, {what: 'privacy agreement'})
  snap('backup-privacy', asking, ROUTES.backup, "WeChat's privacy agreement, asked on the backup page")
  asking.instance.onDisagreePrivacy()
  await choosing
  snap('backup-privacy-refused', asking, ROUTES.backup, 'after a privacy refusal: what it means, not 去设置')
  asking.instance.onUnload()
  kit.privacy.agreed = true

  // --- originals: an album pick without EXIF, chat files with their names -------------
  const originals = loadPage('backup')
  originals.instance.onLoad()
  originals.instance.onShow()
  kit.ui.stripExif = true
  kit.media = [extra[5]]
  await originals.instance.choose()
  kit.ui.stripExif = false
  const notes = path.join(tmp, 'notes.txt')
  fs.writeFileSync(notes, 'not a photo')
  kit.chatFiles = [{path: extra[6].path, name: '海边日落.jpg'}, {path: notes, name: '会议记录.txt'}]
  await originals.instance.chooseChat()
  snap('backup-originals', originals, ROUTES.backup, 'an album pick that lost its EXIF (可能不是原图), a chat file kept byte-exact, a skipped non-photo')
  originals.instance.onUnload()

  // --- a restart while a large photo was going up: its temp file is gone ---------------
  const cut = loadPage('backup')
  cut.instance.onLoad()
  cut.instance.onShow()
  Object.assign(cut.instance.uploader, {threshold: 256 * 1024, chunkSize: 128 * 1024})
  kit.uplink = 512 * 1024
  kit.media = [extra[7]]
  cut.instance.choose()
  await until(() => cut.data.items.length && cut.data.items[0].state === 'uploading' && cut.data.items[0].progress >= 30,
    {what: 'large upload mid-way'})
  kit.uplink = null
  events.close()
  cut.instance.onUnload()
  kit.restart()
  kit.launch(path.join(MINIPROGRAM, 'app.js'))
  const restarted = loadPage('backup')
  restarted.instance.onLoad()
  restarted.instance.onShow()
  await until(() => restarted.data.items.some(i => i.state === 'missing'), {what: 'missing photo'})
  snap('backup-missing', restarted, ROUTES.backup, 'after a restart: the photo whose temp file is gone, with its thumbnail and size, to pick again')
  restarted.instance.onUnload()

  // --- the gallery with the mark --------------------------------------------------------
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  await until(() => gallery.data.images.every(i => i.thumb), {what: 'thumbnails'})
  snap('gallery-marked', gallery, ROUTES.gallery, 'gallery: an album pick that arrived without EXIF is marked 可能不是原图')
  gallery.instance.onUnload()

  // --- an address on another subnet -----------------------------------------------------
  const token = kit.wx.getStorageSync(api.KEY_TOKEN)
  const address = kit.wx.getStorageSync(api.KEY_SERVER)
  kit.wx.removeStorageSync(api.KEY_TOKEN)
  const settings = loadPage('settings')
  await settings.instance.onLoad()
  await settings.instance.onShow()
  settings.setData({server: '10.0.3.5:8000', code: '123456'})
  await settings.instance.pair()
  snap('settings-subnet', settings, ROUTES.settings, 'pairing with a server on another subnet: WeChat\'s cause, and the connection guide')
  kit.wx.setStorageSync(api.KEY_TOKEN, token)
  kit.wx.setStorageSync(api.KEY_SERVER, address)
}

// Phones draw their UI in PingFang SC / SF; the closest font here is the CJK sans
// (Noto Sans CJK SC), so the browser gets it for sans-serif, system-ui and Helvetica
// Neue instead of DejaVu Sans, through a fontconfig file of its own.
function fontConfig(dir) {
  let family = ''
  try {
    family = execFileSync('fc-match', ['-f', '%{family[0]}', 'sans-serif:lang=zh-cn'], {encoding: 'utf8'}).trim()
  } catch (e) {
    return null
  }
  if (!/CJK|Hei|Hans|SC/i.test(family)) return null
  const alias = name => `  <match target="pattern">
    <test qual="any" name="family"><string>${name}</string></test>
    <edit name="family" mode="prepend" binding="strong"><string>${family}</string></edit>
  </match>`
  const file = path.join(dir, 'fonts.conf')
  fs.writeFileSync(file, `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
${['sans-serif', 'sans', 'system-ui', 'Helvetica Neue', 'Helvetica', 'Arial', 'PingFang SC'].map(alias).join('\n')}
</fontconfig>
`)
  return file
}

async function screenshot(pages, outDir) {
  const {chromium} = require('playwright-core')
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-chromium-'))
  const fonts = fontConfig(profile)
  // A fresh profile each run (playwright passes it as --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // Debian's chromium as root, quiet on a closed network.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: {width: PHONE.width, height: PHONE.height},
    deviceScaleFactor: 2,
    locale: 'zh-CN',
    env: Object.assign({}, process.env, fonts ? {FONTCONFIG_FILE: fonts} : {}),
  })
  try {
    const page = await context.newPage()
    for (const {name, file} of pages) {
      await page.goto(`file://${file}`)
      await page.evaluate(() => document.fonts.ready)
      await page.screenshot({path: path.join(outDir, `${name}.png`), animations: 'disabled'})
    }
  } finally {
    await context.close()
    fs.rmSync(profile, {recursive: true, force: true})
  }
}

async function main() {
  const outDir = process.argv[2]
  if (!outDir) {
    log('usage: node tests/miniprogram/preview/run.js OUTDIR')
    process.exit(2)
  }
  const started = Date.now()
  fs.mkdirSync(outDir, {recursive: true})
  const out = path.resolve(outDir)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-preview-'))
  try {
    log('driving the pages against a real server:')
    const missing = []
    const resolveImage = imageResolver({root: MINIPROGRAM, missing})
    const states = await collectStates(tmp, resolveImage)
    const htmlDir = path.join(tmp, 'html')
    fs.mkdirSync(htmlDir)
    const pages = states.map(state => {
      const file = path.join(htmlDir, `${state.name}.html`)
      fs.writeFileSync(file, state.html)
      return {name: state.name, file}
    })
    if (missing.length) log(`images not found (left blank): ${[...new Set(missing)].join(', ')}`)
    if (process.env.PREVIEW_KEEP_HTML) {
      pages.forEach(p => fs.copyFileSync(p.file, path.join(out, `${p.name}.html`)))
    }
    log('screenshots (headless Chromium):')
    await screenshot(pages, out)
    states.forEach(s => log(`  ${path.join(out, `${s.name}.png`)}`))
    log(`${states.length} previews in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  } finally {
    fs.rmSync(tmp, {recursive: true, force: true})
  }
}

main().then(() => process.exit(0), error => {
  log(error && error.stack ? error.stack : String(error))
  process.exit(1)
})
