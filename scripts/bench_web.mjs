// Chromium's side of `scripts/bench --only web` (scripts/bench_web.py runs it):
//   node scripts/bench_web.mjs paint URL TOKEN RUNS    -> {"paint_ms": [...]}
//   node scripts/bench_web.mjs memory URL TOKEN        -> {"top": {...}, "middle": {...}, "bottom": {...},
//                                                         "again": {...} (the bottom after a second pass)}
//   TUBEI_BENCH_DETACHED=1 adds "detached": the Detached DOM nodes of a heap snapshot at the bottom
// The session is put in localStorage as sign-in leaves it; each paint is a fresh page
// of a fresh context, timed to the app's `tubei:timeline-painted` mark (the first
// screen of thumbnails loaded), from the navigation's start.
import {createRequire} from 'node:module'

const require = createRequire(import.meta.url)
const {chromium} = require('playwright-core')
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run']
const [mode, url, token, runs = '5'] = process.argv.slice(2)

async function open(browser) {
  const context = await browser.newContext({locale: 'zh-CN', viewport: {width: 1280, height: 800}})
  await context.addInitScript(value => {
    localStorage.setItem('tubei.session', JSON.stringify({token: value, user: {name: 'bench'}, device: null}))
  }, token)
  return {context, page: await context.newPage()}
}

async function paint(browser) {
  const {context, page} = await open(browser)
  await page.goto(url + '/')
  try {
    await page.waitForFunction(() => performance.getEntriesByName('tubei:timeline-painted').length > 0, null, {timeout: 30000})
  } catch (error) {
    const seen = await page.evaluate(() => [document.body.innerText.slice(0, 200),
      [...document.querySelectorAll('img.thumb')].map(i => `${i.complete}:${i.naturalWidth}`).join(' ')])
    throw new Error(`not painted: ${JSON.stringify(seen)}`)
  }
  const ms = await page.evaluate(() => performance.getEntriesByName('tubei:timeline-painted')[0].startTime)
  const real = await page.evaluate(() => [...document.querySelectorAll('img.thumb')].filter(img => img.naturalWidth > 0).length)
  await context.close()
  return {ms, real}
}

async function counters(cdp) {
  const {metrics: list} = await cdp.send('Performance.getMetrics')
  const get = name => list.find(m => m.name === name).value
  return {heap: get('JSHeapUsedSize'), nodes: get('Nodes'), listeners: get('JSEventListeners')}
}

async function metrics(page, cdp) {
  // Counted once the screen has settled: every thumbnail in the document loaded (or
  // failed). A cell still loading is held by its fetch, so a count taken while the
  // last step's thumbnails arrive says how many were in flight, not what is kept.
  await page.waitForFunction(() => [...document.querySelectorAll('img.thumb')].every(img => img.complete), null, {timeout: 30000})
  await cdp.send('HeapProfiler.collectGarbage')
  const once = await counters(cdp)
  await cdp.send('HeapProfiler.collectGarbage')
  await cdp.send('HeapProfiler.collectGarbage')
  const full = await counters(cdp)
  const [cells, live, doc] = await page.evaluate(() => {
    // Every node in the document (text and comments too, and the document itself): what
    // Blink's counter counts beyond them is held outside it.
    const walker = document.createTreeWalker(document, NodeFilter.SHOW_ALL)
    let count = 1
    while (walker.nextNode()) count += 1
    return [document.querySelectorAll('.cell').length, document.getElementsByTagName('*').length, count]
  })
  return {heap: full.heap, nodes: full.nodes, nodes_one_gc: once.nodes, listeners: full.listeners, live, cells, doc}
}

async function detached(cdp) {
  const chunks = []
  const take = ({chunk}) => chunks.push(chunk)
  cdp.on('HeapProfiler.addHeapSnapshotChunk', take)
  await cdp.send('HeapProfiler.takeHeapSnapshot', {reportProgress: false})
  cdp.off('HeapProfiler.addHeapSnapshotChunk', take)
  const snap = JSON.parse(chunks.join(''))
  const fields = snap.snapshot.meta.node_fields
  const step = fields.length
  const nameAt = fields.indexOf('name')
  const counts = {}
  for (let i = 0; i < snap.nodes.length; i += step) {
    const name = snap.strings[snap.nodes[i + nameAt]]
    if (name.startsWith('Detached ')) counts[name] = (counts[name] || 0) + 1
  }
  return counts
}

async function scrollTo(page, from, to, steps) {
  for (let i = 1; i <= steps; i += 1) {
    await page.evaluate(f => {
      const el = document.querySelector('.timeline-scroll')
      el.scrollTop = (el.scrollHeight - el.clientHeight) * f
    }, from + (to - from) * (i / steps))
    await page.waitForFunction(() => !document.querySelector('.timeline-scroll .placeholder'), null, {timeout: 30000})
  }
}

async function memory(browser) {
  const {context, page} = await open(browser)
  const cdp = await context.newCDPSession(page)
  await cdp.send('Performance.enable')
  await page.goto(url + '/')
  await page.waitForFunction(() => document.querySelector('.timeline-scroll .cell:not(.placeholder)'), null, {timeout: 30000})
  const out = {top: await metrics(page, cdp)}
  await scrollTo(page, 0, 0.25, 20)
  out.quarter = await metrics(page, cdp)
  await scrollTo(page, 0.25, 0.5, 20)
  out.middle = await metrics(page, cdp)
  await scrollTo(page, 0.5, 1, 40)
  out.bottom = await metrics(page, cdp)
  await scrollTo(page, 1, 0, 80)
  await scrollTo(page, 0, 1, 80)
  out.again = await metrics(page, cdp)
  if (process.env.TUBEI_BENCH_DETACHED) out.detached = await detached(cdp)
  out.rows = await page.evaluate(() => document.querySelector('.timeline-space').style.height)
  await context.close()
  return out
}

const browser = await chromium.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: FLAGS})
try {
  if (mode === 'paint') {
    await paint(browser) // warm: thumbnails made, caches filled, as a second visit finds them
    const found = []
    for (let i = 0; i < Number(runs); i += 1) found.push(await paint(browser))
    process.stdout.write(JSON.stringify({paint_ms: found.map(f => f.ms), real: found.map(f => f.real)}) + '\n')
  } else {
    process.stdout.write(JSON.stringify(await memory(browser)) + '\n')
  }
} finally {
  await browser.close()
}
