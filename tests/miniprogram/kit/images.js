// What <image src> and previewImage do with a source on a phone, which
// miniprogram-simulate does not (its <image> is an empty element that loads nothing):
// a local file is read; an http(s) URL is fetched with no header at all — WeChat's
// <image> and previewImage cannot send one, so a URL that needs the bearer token fails
// there — under the URL policy of downloadFile (kit/phone.js); anything else (a path
// relative to the server, say) is looked up in the mini-program's package and not
// found. The page hears of each failure through the <image>'s binderror.
//
// The kit does not throttle these loads (a phone's image loader is not one of the 10
// request/download slots) and does not cache them across loads.
const fs = require('fs')
const http = require('http')
const path = require('path')
const {refusal} = require('./phone')

const MINIPROGRAM = path.resolve(__dirname, '../../../miniprogram')

function makeImages(kit) {
  // One source, as <image> loads it: {src, ok, status, bytes, ms, error}.
  function load(src) {
    const started = Date.now()
    const done = fields => Object.assign({src, ms: Date.now() - started, bytes: 0}, fields)
    if (typeof src !== 'string' || !src) return Promise.resolve(done({ok: false, error: 'no src'}))
    if (kit.state === 'suspended') return Promise.resolve(done({ok: false, error: 'interrupted'}))
    if (!/^https?:\/\//i.test(src)) {
      // A local file (a temp or user-data path), or else a file of the package.
      const local = fs.existsSync(src) || fs.existsSync(path.join(MINIPROGRAM, src))
      return Promise.resolve(local ? done({ok: true, status: 0}) : done({ok: false, error: 'file not found'}))
    }
    const reason = refusal(kit.phone, 'downloadFile', src)
    if (reason) return Promise.resolve(done({ok: false, error: reason}))
    if (!kit.online) return Promise.resolve(done({ok: false, error: 'net::ERR_INTERNET_DISCONNECTED'}))
    kit.sent += 1
    return new Promise(resolve => {
      const request = http.get(src, {agent: false, headers: {}}, response => {
        let bytes = 0
        response.on('data', chunk => {
          bytes += chunk.length
          kit.received += chunk.length
        })
        response.on('end', () => {
          const type = response.headers['content-type'] || ''
          const ok = response.statusCode === 200 && type.startsWith('image/')
          resolve(done({ok, status: response.statusCode, bytes, error: ok ? undefined : `status ${response.statusCode}`}))
        })
        response.on('error', error => resolve(done({ok: false, error: error.message})))
      })
      request.on('error', error => resolve(done({ok: false, error: error.message})))
    })
  }

  // The <image> tags of a page's WXML with class `cls`, inside a wx:for: which list and
  // field they show, when they render (wx:if), and their binderror and data-* bindings.
  function tagsOf(route, cls) {
    const wxml = fs.readFileSync(path.join(MINIPROGRAM, `${route}.wxml`), 'utf8')
    const tag = (wxml.match(/<image\b[^>]*>/g) || []).find(t => new RegExp(`class="[^"]*\\b${cls}\\b`).test(t))
    if (!tag) throw new Error(`${route}.wxml has no <image class="${cls}">`)
    const before = wxml.slice(0, wxml.indexOf(tag))
    const loops = before.match(/wx:for="\{\{(\w+)\}\}"/g) || []
    if (!loops.length) throw new Error(`<image class="${cls}"> in ${route}.wxml is in no wx:for`)
    const list = /\{\{(\w+)\}\}/.exec(loops[loops.length - 1])[1]
    const field = (/\bsrc="\{\{item\.(\w+)\}\}"/.exec(tag) || [])[1]
    if (!field) throw new Error(`<image class="${cls}"> binds its src to no item field`)
    const shownIf = (/wx:if="\{\{item\.(\w+)\}\}"/.exec(tag) || [])[1]
    const onError = (/\bbinderror="(\w+)"/.exec(tag) || [])[1]
    const dataset = {}
    for (const m of tag.matchAll(/\bdata-(\w+)="\{\{item\.(\w+)\}\}"/g)) dataset[m[1]] = m[2]
    return {list, field, shownIf, onError, dataset}
  }

  // The first `count` cells' images of a rendered page loaded at once, as a phone
  // loads what is on screen (lazy-load leaves the rest); failures go to binderror.
  async function showPage(page, route, cls, {count = Infinity} = {}) {
    const tag = tagsOf(route, cls)
    const items = (page.data[tag.list] || []).slice(0, count)
    const shown = items.filter(item => !tag.shownIf || item[tag.shownIf])
    const results = await Promise.all(shown.map(item => load(item[tag.field])))
    results.forEach((result, i) => {
      kit.log.push({api: '(image)', src: result.src, ok: result.ok, status: result.status})
      if (!result.ok && tag.onError && page.instance[tag.onError]) {
        const data = {}
        Object.entries(tag.dataset).forEach(([name, field]) => { data[name] = shown[i][field] })
        page.instance[tag.onError]({type: 'error', detail: {errMsg: result.error},
          currentTarget: {dataset: data}, target: {dataset: data}})
      }
    })
    return results
  }

  return {load, tagsOf, showPage}
}

module.exports = {makeImages}
