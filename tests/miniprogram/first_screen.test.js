/**
 * The gallery's first screen, measured in the kit against a real server: 60 photos
 * listed (one page), the first 24 cells on screen (4 a row, 6 rows: a 375 x 667 pt
 * phone). Before: an older server's answers (no signed URLs), a downloadFile with the
 * token per thumbnail into the cache. After: the signed URLs in <image src>, loaded
 * as a phone loads what is on screen. Requests, bytes received and time, from onLoad
 * until the first screen shows (and, before, until its downloads settle), printed for
 * docs/miniprogram.md; the counts are asserted.
 * @jest-environment jsdom
 */
const fs = require('fs')
const http = require('http')
const path = require('path')
const {pairedSession} = require('./kit/session')
const {makePhotos, uploadDirect} = require('./kit/server')
const {loadPage, until, ROOT} = require('./kit/pages')

const PHOTOS = 60
const SCREEN = 24
const RUNS = 3
const session = pairedSession('tubei-first-screen-')
const thumbcache = require('../../miniprogram/utils/thumbcache')

function asAnOlderServer(url, text) {
  if (!/\/api\/v1\/(images|events)/.test(url)) return text
  const body = JSON.parse(text)
  ;(body.items || []).forEach(image => { delete image.signed_urls })
  if (body.image) delete body.image.signed_urls
  return JSON.stringify(body)
}

function get(url, token) {
  return new Promise((resolve, reject) => {
    http.get(url, {agent: false, headers: {Authorization: `Bearer ${token}`}}, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    }).on('error', reject)
  })
}

function emptyCache(kit) {
  thumbcache.reset()
  fs.rmSync(path.join(kit.wx.env.USER_DATA_PATH, 'thumbs'), {recursive: true, force: true})
  kit.wx.removeStorageSync(thumbcache.KEY)
  thumbcache.reset()
}

// One first screen: {requests, bytes, ms} when it shows, and when the network settles.
async function firstScreen(kit, {older, cold = true}) {
  kit.rewriteAnswer = older ? asAnOlderServer : null
  if (cold) emptyCache(kit)
  else thumbcache.reset() // a new session: the cache is read from storage again
  const start = {sent: kit.sent, bytes: kit.received, at: Date.now()}
  const mark = () => ({requests: kit.sent - start.sent, bytes: kit.received - start.bytes, ms: Date.now() - start.at})
  const gallery = loadPage('gallery')
  const loading = gallery.instance.onLoad()
  await until(() => gallery.data.images.length === PHOTOS, {what: 'the listing'})
  let shown
  if (older) {
    await until(() => gallery.data.images.slice(0, SCREEN).every(i => i.thumb), {what: 'thumbnails'})
    const local = await kit.images.showPage(gallery, 'pages/gallery/gallery', 'grid__img', {count: SCREEN})
    expect(local.every(r => r.ok && r.status === 0)).toBe(true) // local files
    shown = mark()
  } else {
    const loaded = await kit.images.showPage(gallery, 'pages/gallery/gallery', 'grid__img', {count: SCREEN})
    expect(loaded.every(r => r.ok && r.status === 200)).toBe(true)
    shown = mark()
  }
  await loading
  const settled = mark()
  gallery.instance.onUnload()
  kit.rewriteAnswer = null
  return {shown, settled}
}

const median = values => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]

beforeAll(async () => {
  const {kit, server, tmp} = session
  kit.privacy.agreed = true
  kit.launch(path.join(ROOT, 'app.js'))
  const token = server.token('mum')
  const specs = Array.from({length: PHOTOS}, (_, i) => ({name: `IMG_${1000 + i}.jpg`, width: 800, height: 600}))
  const photos = makePhotos(tmp, specs)
  const ids = []
  for (const photo of photos) ids.push((await uploadDirect(server, token, photo.path)).items[0].id)
  // Every grid thumbnail made before anything is measured, so neither side pays for it.
  for (const id of ids) expect(await get(`${server.url}/api/v1/images/${id}/thumbnail`, token)).toBe(200)
  // The events socket opened once, outside the measurements.
  await firstScreen(kit, {older: false})
})

test('the first screen: fewer requests and bytes with signed URLs than a download per thumbnail', async () => {
  const {kit} = session
  const runs = {before: [], after: [], beforeWarm: [], afterWarm: []}
  for (let i = 0; i < RUNS; i++) {
    runs.before.push(await firstScreen(kit, {older: true}))
    runs.beforeWarm.push(await firstScreen(kit, {older: true, cold: false}))
    runs.after.push(await firstScreen(kit, {older: false}))
    runs.afterWarm.push(await firstScreen(kit, {older: false, cold: false}))
  }
  const row = (name, list, key) => {
    const pick = field => median(list.map(r => r[key][field]))
    return `| ${name} | ${pick('requests')} | ${(pick('bytes') / 1024).toFixed(0)} KiB | ${pick('ms')} ms |`
  }
  const table = [
    '| first screen (median of 3) | requests | bytes received | time |',
    '|---|---|---|---|',
    row('before: downloadFile per thumbnail, first screen shown', runs.before, 'shown'),
    row('before: ... until its downloads settle', runs.before, 'settled'),
    row('before, next session (thumbnail cache)', runs.beforeWarm, 'settled'),
    row('after: signed URLs in <image src>, first screen shown', runs.after, 'shown'),
    row('after, next session (the kit caches no <image>)', runs.afterWarm, 'shown'),
  ].join('\n')
  // What the signed URLs add to the listing itself.
  const listing = await new Promise(resolve => kit.wx.request({
    url: `${session.server.url}/api/v1/images?limit=${PHOTOS}`,
    header: {Authorization: `Bearer ${kit.wx.getStorageSync('tubei.token')}`},
    dataType: 'text',
    success: ({data}) => resolve(data),
  }))
  const without = asAnOlderServer('/api/v1/images', listing)
  const sizes = `listing of ${PHOTOS}: ${(listing.length / 1024).toFixed(1)} KiB, ` +
    `${(without.length / 1024).toFixed(1)} KiB without signed_urls`
  process.stdout.write(`\n${table}\n\n${sizes}\n\n`)
  const requests = (list, key) => list.map(r => r[key].requests)
  // before: the listing and all 60 thumbnails downloaded (one page, not lazy); after:
  // the listing and the 24 on screen.
  requests(runs.before, 'settled').forEach(n => expect(n).toBe(1 + PHOTOS))
  requests(runs.after, 'shown').forEach(n => expect(n).toBe(1 + SCREEN))
  requests(runs.beforeWarm, 'settled').forEach(n => expect(n).toBe(1))
  expect(median(runs.after.map(r => r.shown.bytes))).toBeLessThan(median(runs.before.map(r => r.settled.bytes)))
  expect(kit.log.filter(e => e.api === 'downloadFile' && !/thumbnail/.test(e.url))).toHaveLength(0)
})
