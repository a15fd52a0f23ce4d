// Loading pages the way WeChat does, as far as miniprogram-simulate allows: a page
// built with Component() is rendered, attached, and its page lifecycle (onLoad,
// onShow, ...) called by hand since simulate has no Page host.
const path = require('path')
const simulate = require('miniprogram-simulate')

const ROOT = path.resolve(__dirname, '../../../miniprogram')

// jest keeps its own module registry, so a page's js runs (and registers) once per
// test file: load each page once and render fresh instances from its id.
const loaded = {}

function loadPage(name) {
  if (!loaded[name]) {
    loaded[name] = simulate.load(path.join(ROOT, 'pages', name, name), {compiler: 'simulate', rootPath: ROOT})
  }
  const page = simulate.render(loaded[name])
  page.attach(document.createElement('parent-wrapper'))
  return page
}

// Every setData, with the data and the rendered text after it, for "watch it rise".
function recordRenders(page, pick) {
  const seen = []
  const setData = page.instance.setData.bind(page.instance)
  page.instance.setData = (data, callback) => {
    setData(data, callback)
    seen.push(pick(page))
  }
  return seen
}

async function until(check, {timeout = 20000, what = 'condition'} = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 20))
  }
}

function text(page, selector) {
  const node = page.querySelector(selector)
  return node ? node.dom.textContent.trim() : null
}

module.exports = {loadPage, recordRenders, until, text, simulate, ROOT}
