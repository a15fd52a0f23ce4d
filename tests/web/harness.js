// The web app's tests: a real Tubei server (tests/miniprogram/kit/server.js) serving the
// built app (web/dist), and Debian's Chromium driven by playwright-core.
//
//   const {describeWeb, useApp} = require('./harness')
//   describeWeb('sign in', () => {
//     const app = useApp()            // server + browser for the file, checks after each test
//     test('...', async () => {
//       const page = await app.newPage()        // a fresh context, signed in as mum
//       await app.shot(page, 'timeline')        // $TUBEI_WEB_SHOTS/timeline.png, when set
//     })
//   })
//
// Every page's console errors, uncaught exceptions and Content-Security-Policy violations
// are collected; after each test any of them fails it (app.allowErrors(page, /regex/)
// for those a test means to cause, e.g. a 401 the browser logs).
const fs = require('fs')
const os = require('os')
const path = require('path')
const {startServer, ROOT} = require('../miniprogram/kit/server')

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const DIST = path.join(ROOT, 'web', 'dist')
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run']

const haveChromium = fs.existsSync(CHROMIUM)
const PHONE = {viewport: {width: 360, height: 740}, isMobile: true, hasTouch: true, deviceScaleFactor: 2}

// describe, or describe.skip when there is no Chromium, with one line saying why for
// the whole run (jest's workers share a parent: the first to get here says it).
function describeWeb(name, body) {
  if (haveChromium) return describe(name, body)
  try {
    fs.closeSync(fs.openSync(path.join(os.tmpdir(), `tubei-web-skipped-${process.ppid}`), 'wx'))
    process.stderr.write(`tests/web: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM): the web app's browser tests are skipped\n`)
  } catch (e) {
    // said already in this run
  }
  return describe.skip(name, body)
}

function requireBuild() {
  if (!fs.existsSync(path.join(DIST, 'index.html'))) {
    throw new Error(`${DIST}/index.html is missing: build the web app first (npm run build:web; scripts/test does it)`)
  }
}

async function startApp({serverArgs = []} = {}) {
  requireBuild()
  const {chromium} = require('playwright-core')
  const server = await startServer({extraArgs: serverArgs})
  let browser
  try {
    browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args: FLAGS})
  } catch (error) {
    await server.stop()
    throw error
  }
  const problems = new Map() // page -> [{text, allowed}]
  const allowed = new Map() // page -> [regex]
  let opened = []

  function watch(page) {
    const list = []
    problems.set(page, list)
    allowed.set(page, [])
    const add = text => list.push(text)
    page.on('console', message => {
      if (message.type() === 'error') add(`console: ${message.text()}`)
    })
    page.on('pageerror', error => add(`page error: ${error.stack || error}`))
    opened.push(page)
  }

  // phone: a 360x740 phone's browser (the narrowest the app is made for): the page's
  // meta viewport applies, touch events are on, two device pixels per CSS pixel.
  async function context({phone = false} = {}) {
    const ctx = await browser.newContext(phone
      ? {locale: 'zh-CN', ...PHONE}
      : {locale: 'zh-CN', viewport: {width: 1280, height: 800}})
    // Chromium logs a violation to the console too; the event makes sure none goes unseen.
    await ctx.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', event => {
        console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`)
      })
    })
    return ctx
  }

  function pairingCode(user = 'mum') {
    const link = server.pairingCode(user)
    return new URL(link.replace('tubei://', 'http://x/')).searchParams.get('code')
  }

  // Sign in through the real form, with a code from the server's CLI.
  async function signIn(page, {user = 'mum', device} = {}) {
    await page.getByLabel('配对码').fill(pairingCode(user))
    if (device !== undefined) await page.getByLabel('设备名称').fill(device)
    await page.getByRole('button', {name: '登录'}).click()
    await page.getByRole('navigation').waitFor()
  }

  async function newPage({signedIn = true, user = 'mum', device, viewport, phone = false} = {}) {
    const ctx = await context({phone})
    const page = await ctx.newPage()
    if (viewport) await page.setViewportSize(viewport)
    watch(page)
    await page.goto(server.url + '/')
    if (signedIn) await signIn(page, {user, device})
    return page
  }

  async function shot(page, name) {
    const dir = process.env.TUBEI_WEB_SHOTS
    if (!dir) return null
    fs.mkdirSync(dir, {recursive: true})
    const file = path.join(dir, `${name}.png`)
    await page.screenshot({path: file})
    return file
  }

  function allowErrors(page, pattern) {
    allowed.get(page).push(pattern)
  }

  // The problems seen since the last check, on every page opened meanwhile; the pages'
  // contexts are closed.
  async function check() {
    const found = []
    for (const page of opened) {
      const ok = allowed.get(page)
      for (const text of problems.get(page)) {
        if (!ok.some(pattern => pattern.test(text))) found.push(`${page.url()}: ${text}`)
      }
      problems.delete(page)
      allowed.delete(page)
      await page.context().close().catch(() => {})
    }
    opened = []
    if (found.length) throw new Error(`the page reported problems:\n${found.join('\n')}`)
  }

  async function close() {
    try {
      await browser.close()
    } finally {
      await server.stop()
    }
  }

  return {server, url: server.url, browser, newPage, signIn, pairingCode, shot, allowErrors, check, close}
}

// startApp for a describe block: started before its tests, checked after each, closed
// after all. The returned object is filled in when the server and browser are up.
function useApp(options) {
  const app = {}
  beforeAll(async () => {
    Object.assign(app, await startApp(options))
  }, 60000)
  afterEach(async () => {
    if (app.check) await app.check()
  })
  afterAll(async () => {
    if (app.close) await app.close()
  })
  return app
}

// The API from Node, for what a test checks beside the page (not through it).
async function apiStatus(app, method, apiPath, token) {
  const response = await fetch(`${app.url}/api/v1${apiPath}`, {
    method,
    headers: token ? {Authorization: `Bearer ${token}`} : {},
  })
  await response.arrayBuffer()
  return response.status
}

// The session the page keeps (localStorage `tubei.session`), or null.
function sessionOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('tubei.session') || 'null'))
}

module.exports = {describeWeb, useApp, startApp, apiStatus, sessionOf, haveChromium, CHROMIUM, PHONE}
