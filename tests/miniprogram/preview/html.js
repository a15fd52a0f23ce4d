// A page as miniprogram-simulate rendered it, turned into one HTML document that a
// browser draws the way WeChat would: WXML tags become WeChat's own custom elements
// (<wx-view>, <wx-image>, ... as in WeChat's webview), WXSS becomes CSS (rpx to px for a
// 375-px-wide phone, tag selectors to those elements, @import inlined), and the page
// sits in a phone frame with WeChat's navigation bar and the app's tab bar.
// No browser here: run.js screenshots the result; the jest test reads it.
const fs = require('fs')
const path = require('path')
const {PHONE, rpxToPx, rewriteSelector, wxssToCss} = require('./wxss')

function escapeHtml(value) {
  return String(value).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]))
}

// --- images -------------------------------------------------------------------------

function sniffMime(buffer) {
  if (buffer[0] === 0xff && buffer[1] === 0xd8) return 'image/jpeg'
  if (buffer.slice(0, 4).toString('latin1') === '\x89PNG') return 'image/png'
  if (buffer.slice(0, 3).toString('latin1') === 'GIF') return 'image/gif'
  if (buffer.slice(8, 12).toString('latin1') === 'WEBP') return 'image/webp'
  if (/^\s*<(\?xml|svg)/.test(buffer.slice(0, 64).toString('utf8'))) return 'image/svg+xml'
  return 'application/octet-stream'
}

// An <image src> as the browser should load it: temp files and package files become
// data: URLs, so the HTML stands alone; what cannot be found is reported and left blank.
function imageResolver({root, missing = []} = {}) {
  const cache = new Map()
  const resolve = src => {
    if (!src) return ''
    if (/^(data|https?):/i.test(src)) return src
    if (cache.has(src)) return cache.get(src)
    const candidates = [src, root && path.join(root, src.replace(/^\/+/, ''))].filter(Boolean)
    const file = candidates.find(f => path.isAbsolute(f) && fs.existsSync(f) && fs.statSync(f).isFile())
    let url = ''
    if (file) {
      const buffer = fs.readFileSync(file)
      url = `data:${sniffMime(buffer)};base64,${buffer.toString('base64')}`
    } else {
      missing.push(src)
    }
    cache.set(src, url)
    return url
  }
  resolve.missing = missing
  return resolve
}

// --- the rendered tree -> HTML --------------------------------------------------------

// background-size / -position for <image mode> (WeChat draws images as backgrounds).
const IMAGE_MODES = {
  scaleToFill: ['100% 100%', '0 0'],
  aspectFit: ['contain', 'center center'],
  aspectFill: ['cover', 'center center'],
  top: ['auto', 'top center'],
  bottom: ['auto', 'bottom center'],
  center: ['auto', 'center center'],
  left: ['auto', 'center left'],
  right: ['auto', 'center right'],
  'top left': ['auto', 'top left'],
  'top right': ['auto', 'top right'],
  'bottom left': ['auto', 'bottom left'],
  'bottom right': ['auto', 'bottom right'],
}

// wx-icon types, drawn with WeUI's own icon masks, in WeChat's default colours.
const ICONS = {
  success: ['weui-icon-success', '#07c160'],
  success_no_circle: ['weui-icon-success-no-circle', '#07c160'],
  info: ['weui-icon-info', '#10aeff'],
  warn: ['weui-icon-warn', '#fa5151'],
  waiting: ['weui-icon-waiting', '#10aeff'],
  cancel: ['weui-icon-cancel', '#fa5151'],
  download: ['weui-icon-download', '#07c160'],
  search: ['weui-icon-search', '#b2b2b2'],
  clear: ['weui-icon-clear', '#b2b2b2'],
}

function attrMap(node) {
  const attrs = {}
  ;(node.attrs || []).forEach(({name, value}) => { attrs[name] = value })
  return attrs
}

function size(value, fallback) {
  if (value === undefined || value === '') return fallback
  const text = String(value)
  return /^-?[\d.]+$/.test(text) ? `${text}px` : rpxToPx(text)
}

// Attributes worth keeping on the element: class, id, style (rpx converted), hidden,
// and the plain ones WXSS or WeChat's component styles select on (type, size, ...).
function openTag(tag, attrs, extraStyle = '') {
  let html = `<${tag}`
  Object.entries(attrs).forEach(([name, value]) => {
    if (value === false || value === null || value === undefined) return
    if (typeof value === 'object') return
    if (name === 'src' || name === 'value' || name === 'placeholder') return
    if (name === 'style') return
    html += value === true || value === '' ? ` ${name}` : ` ${name}="${escapeHtml(value)}"`
  })
  const style = [attrs.style ? rpxToPx(attrs.style) : '', extraStyle].filter(Boolean).join('; ')
  if (style) html += ` style="${escapeHtml(style)}"`
  return `${html}>`
}

function treeToHtml(node, {resolveImage = imageResolver()} = {}) {
  const render = n => {
    if (n === null || n === undefined) return ''
    if (typeof n !== 'object') return escapeHtml(n)
    const children = () => (n.children || []).map(render).join('')
    const tag = n.tagName
    if (!/^wx-/.test(tag)) return children() // simulate's <main> root and virtual hosts
    const attrs = attrMap(n)
    switch (tag) {
      case 'wx-image': {
        const url = resolveImage(attrs.src)
        const mode = attrs.mode || 'scaleToFill'
        if (mode === 'widthFix' || mode === 'heightFix') {
          return `${openTag(tag, attrs)}${url ? `<img class="pv-fix" src="${escapeHtml(url)}">` : ''}</${tag}>`
        }
        const [bgSize, bgPosition] = IMAGE_MODES[mode] || IMAGE_MODES.scaleToFill
        const bg = url ? `background-image:url(&quot;${escapeHtml(url)}&quot;);` : ''
        return `${openTag(tag, attrs)}<div style="${bg}background-size:${bgSize};` +
          `background-position:${bgPosition};background-repeat:no-repeat"></div></${tag}>`
      }
      case 'wx-input':
      case 'wx-textarea': {
        const value = attrs.value === undefined || attrs.value === null ? '' : String(attrs.value)
        const shown = attrs.password || attrs.type === 'password' ? '•'.repeat(value.length) : value
        const inner = value
          ? `<div class="pv-input__value">${escapeHtml(shown)}</div>`
          : `<div class="input-placeholder ${escapeHtml(attrs['placeholder-class'] || '')}"` +
            ` style="${escapeHtml(rpxToPx(attrs['placeholder-style'] || ''))}">${escapeHtml(attrs.placeholder || '')}</div>`
        return `${openTag(tag, attrs)}<div class="pv-input">${inner}</div></${tag}>`
      }
      case 'wx-progress': {
        const percent = Math.max(0, Math.min(100, Number(attrs.percent) || 0))
        const stroke = size(attrs['stroke-width'], '6px')
        const active = attrs.activeColor || attrs['active-color'] || attrs.color || '#07c160'
        const back = attrs.backgroundColor || attrs['background-color'] || '#ebebeb'
        const radius = size(attrs['border-radius'], '0')
        const info = attrs['show-info'] ? `<p class="pv-progress__info">${percent}%</p>` : ''
        return `${openTag(tag, attrs)}<div class="pv-progress__bar" style="height:${stroke};background:${back};border-radius:${radius}">` +
          `<div class="pv-progress__inner" style="width:${percent}%;background:${active};border-radius:${radius}"></div></div>${info}</${tag}>`
      }
      case 'wx-icon': {
        const [klass, color] = ICONS[attrs.type] || ICONS.info
        const px = size(attrs.size, '23px')
        return `${openTag(tag, attrs)}<i class="${klass} pv-icon" style="width:${px};height:${px};` +
          `color:${escapeHtml(attrs.color || color)}"></i></${tag}>`
      }
      case 'wx-scroll-view': {
        const overflow = `overflow-x:${attrs['scroll-x'] ? 'auto' : 'hidden'};overflow-y:${attrs['scroll-y'] ? 'auto' : 'hidden'}`
        return `${openTag(tag, attrs, overflow)}${children()}</${tag}>`
      }
      default:
        return `${openTag(tag, attrs)}${children()}</${tag}>`
    }
  }
  return render(node)
}

// --- WeChat's own parts: component defaults, status bar, navigation bar, tab bar ----

// Default styles of WeChat's built-in components (base library, style v2), as far as
// these pages use them; the page's WXSS comes after and wins.
const COMPONENT_CSS = `
wx-page { display: block; min-height: 100%; }
wx-view, wx-scroll-view, wx-swiper, wx-swiper-item, wx-navigator, wx-form, wx-cover-view, wx-rich-text { display: block; }
wx-text, wx-label { display: inline; }
wx-text { white-space: pre-wrap; }
[hidden] { display: none !important; }
wx-image { display: inline-block; overflow: hidden; width: 320px; height: 240px; }
wx-image > div { width: 100%; height: 100%; }
wx-image > img.pv-fix { display: block; width: 100%; height: auto; }
wx-image[mode="widthFix"] { height: auto; }
wx-image[mode="heightFix"] { width: auto; }
wx-image[mode="heightFix"] > img.pv-fix { width: auto; height: 100%; }
wx-button { position: relative; display: block; width: 184px; margin-left: auto; margin-right: auto;
  padding: 8px 24px; box-sizing: border-box; font-size: 17px; font-weight: 700; text-align: center;
  text-decoration: none; line-height: 1.41176471; border-radius: 4px; overflow: hidden;
  color: #06ae56; background-color: #f2f2f2; }
wx-button[type="primary"] { color: #fff; background-color: #07c160; }
wx-button[type="warn"] { color: #fa5151; background-color: #f2f2f2; }
wx-button[size="mini"] { display: inline-block; width: auto; padding: 0 .75em; font-size: 13px; line-height: 2.3; }
wx-button[disabled] { opacity: .6; }
wx-button[loading]::before { content: ""; display: inline-block; width: 18px; height: 18px;
  margin: -.2em .34em 0 0; vertical-align: middle; border-radius: 50%; box-sizing: border-box;
  border: 2px solid currentColor; border-right-color: transparent; opacity: .7; }
wx-input, wx-textarea { display: block; position: relative; overflow: hidden; white-space: nowrap;
  text-overflow: clip; min-height: 1.4rem; }
wx-textarea { width: 300px; height: 150px; white-space: pre-wrap; }
.pv-input { position: relative; height: 100%; overflow: hidden; }
.pv-input__value { overflow: hidden; text-overflow: clip; }
.input-placeholder { color: #b2b2b2; overflow: hidden; text-overflow: ellipsis; }
wx-progress { display: flex; align-items: center; }
.pv-progress__bar { flex: 1; overflow: hidden; }
.pv-progress__inner { height: 100%; }
.pv-progress__info { margin: 0 0 0 15px; font-size: 16px; }
wx-icon { display: inline-block; font-size: 0; vertical-align: middle; }
wx-icon > .pv-icon { display: inline-block; }
`

const SHELL_CSS = `
html, body { margin: 0; padding: 0; background: #000; }
* { -webkit-font-smoothing: antialiased; }
.pv-phone { position: relative; width: ${PHONE.width}px; height: ${PHONE.height}px; overflow: hidden;
  display: flex; flex-direction: column; font-family: system-ui, -apple-system, "Helvetica Neue", sans-serif; }
.pv-status { flex: none; height: ${PHONE.statusBar}px; display: flex; align-items: center;
  justify-content: space-between; padding: 4px 26px 0 34px; box-sizing: border-box;
  font-size: 15px; font-weight: 600; letter-spacing: -.2px; }
.pv-status__icons { display: flex; align-items: center; gap: 5px; }
.pv-nav { position: relative; flex: none; height: ${PHONE.navBar}px; display: flex; align-items: center;
  justify-content: center; }
.pv-nav__title { font-size: 17px; font-weight: 500; max-width: 180px; overflow: hidden;
  white-space: nowrap; text-overflow: ellipsis; }
.pv-nav__back { position: absolute; left: 8px; top: 0; height: 100%; width: 32px; display: flex;
  align-items: center; justify-content: center; }
.pv-capsule { position: absolute; right: 7px; top: 6px; width: 87px; height: 32px; box-sizing: border-box;
  border-radius: 16px; display: flex; align-items: center; background: rgba(255,255,255,.6);
  border: .5px solid rgba(0,0,0,.1); }
.pv-capsule__half { flex: 1; height: 100%; display: flex; align-items: center; justify-content: center; }
.pv-capsule__line { width: .5px; height: 18px; background: rgba(0,0,0,.15); }
.pv-body { position: relative; flex: 1; min-height: 0; overflow: hidden; transform: translateZ(0); }
.pv-body > .pv-scroll { position: absolute; inset: 0; overflow: hidden; }
.pv-tabbar { position: relative; flex: none; height: ${PHONE.tabBar + PHONE.homeIndicator}px;
  box-sizing: border-box; padding-bottom: ${PHONE.homeIndicator}px; display: flex; }
.pv-tabbar::before { content: ""; position: absolute; left: 0; right: 0; top: 0; height: 1px;
  transform: scaleY(.5); transform-origin: 0 0; }
.pv-tab { flex: 1; display: flex; flex-direction: column; align-items: center; justify-content: center; }
.pv-tab__text { font-size: 10px; line-height: 1.4; margin-top: 2px; }
.pv-tab_textonly .pv-tab__text { font-size: 15px; margin-top: 0; }
.pv-tab__icon { width: 24px; height: 24px; background-size: contain; background-repeat: no-repeat; background-position: center; }
.pv-home { position: absolute; left: 50%; bottom: 8px; width: 134px; height: 5px; margin-left: -67px;
  border-radius: 3px; background: rgba(0,0,0,.9); }
`

const SIGNAL = '<svg width="18" height="12" viewBox="0 0 18 12"><rect x="0" y="8" width="3" height="4" rx="1"/><rect x="5" y="5.5" width="3" height="6.5" rx="1"/><rect x="10" y="3" width="3" height="9" rx="1"/><rect x="15" y="0" width="3" height="12" rx="1"/></svg>'
const WIFI = '<svg width="16" height="12" viewBox="0 0 16 12"><path d="M8 2.6c2.3 0 4.4.9 6 2.4l1.2-1.3A10.5 10.5 0 0 0 8 .8 10.5 10.5 0 0 0 .8 3.7L2 5c1.6-1.5 3.7-2.4 6-2.4zm0 3.5c1.3 0 2.5.5 3.5 1.3l1.2-1.3A7 7 0 0 0 8 4.3a7 7 0 0 0-4.7 1.8l1.2 1.3c1-.8 2.2-1.3 3.5-1.3zm0 3.4c.4 0 .8.1 1.1.4L8 11.2 6.9 9.9c.3-.3.7-.4 1.1-.4z"/></svg>'
const BATTERY = '<svg width="27" height="13" viewBox="0 0 27 13"><rect x=".5" y=".5" width="22" height="12" rx="3.5" fill="none" stroke="currentColor" opacity=".4"/><rect x="2" y="2" width="19" height="9" rx="2"/><path d="M24 4.5v4c.8-.3 1.5-1.1 1.5-2s-.7-1.7-1.5-2z" opacity=".4"/></svg>'
const MORE = '<svg width="20" height="6" viewBox="0 0 20 6"><circle cx="3" cy="3" r="2.2"/><circle cx="10" cy="3" r="3"/><circle cx="17" cy="3" r="2.2"/></svg>'
const CLOSE = '<svg width="20" height="20" viewBox="0 0 20 20"><circle cx="10" cy="10" r="8" fill="none" stroke="currentColor" stroke-width="1.6"/><circle cx="10" cy="10" r="3"/></svg>'
const BACK = '<svg width="12" height="24" viewBox="0 0 12 24"><path d="M3.343 12l7.071 7.071L9 20.485l-7.778-7.778a1 1 0 0 1 0-1.414L9 3.515l1.414 1.414L3.344 12z"/></svg>'

// The page's window settings: app.json "window", then the page's own json.
function windowFor(app, pageJson) {
  return Object.assign({
    navigationBarTitleText: '',
    navigationBarBackgroundColor: '#000000',
    navigationBarTextStyle: 'white',
    backgroundColor: '#ffffff',
  }, app.window || {}, pageJson || {})
}

function tabBarHtml(tabBar, route, resolveImage) {
  if (!tabBar || !tabBar.list || !tabBar.list.some(t => t.pagePath === route)) return ''
  const textOnly = !tabBar.list.some(t => t.iconPath)
  const border = tabBar.borderStyle === 'white' ? 'rgba(255,255,255,.3)' : 'rgba(0,0,0,.33)'
  const tabs = tabBar.list.map(tab => {
    const selected = tab.pagePath === route
    const icon = selected ? tab.selectedIconPath || tab.iconPath : tab.iconPath
    const url = icon ? resolveImage(`/${icon}`) : ''
    return `<div class="pv-tab${textOnly ? ' pv-tab_textonly' : ''}${selected ? ' pv-tab_selected' : ''}">` +
      (url ? `<div class="pv-tab__icon" style="background-image:url(&quot;${escapeHtml(url)}&quot;)"></div>` : '') +
      `<div class="pv-tab__text" style="color:${selected ? tabBar.selectedColor : tabBar.color}">${escapeHtml(tab.text)}</div></div>`
  }).join('')
  return `<div class="pv-tabbar" style="background:${tabBar.backgroundColor || '#fff'}">` +
    `<style>.pv-tabbar::before{background:${border}}</style>${tabs}<div class="pv-home"></div></div>`
}

// One page state as a whole HTML document.
//   root: the miniprogram/ folder; route: "pages/backup/backup"; tree: page.toJSON()
function pageHtml({root, route, tree, resolveImage}) {
  resolveImage = resolveImage || imageResolver({root})
  const app = JSON.parse(fs.readFileSync(path.join(root, 'app.json'), 'utf8'))
  const pageJsonFile = path.join(root, `${route}.json`)
  const pageJson = fs.existsSync(pageJsonFile) ? JSON.parse(fs.readFileSync(pageJsonFile, 'utf8')) : {}
  const win = windowFor(app, pageJson)
  const appCss = fs.existsSync(path.join(root, 'app.wxss')) ? wxssToCss(path.join(root, 'app.wxss'), {root}) : ''
  const pageCssFile = path.join(root, `${route}.wxss`)
  const pageCss = fs.existsSync(pageCssFile) ? wxssToCss(pageCssFile, {root}) : ''
  const dark = win.navigationBarTextStyle === 'white'
  const fg = dark ? '#fff' : '#000'
  const isTab = Boolean(app.tabBar && app.tabBar.list.some(t => t.pagePath === route))
  const home = app.pages && app.pages[0] === route
  const body = treeToHtml(tree, {resolveImage})
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=${PHONE.width}, initial-scale=1">
<title>${escapeHtml(win.navigationBarTitleText)} · ${escapeHtml(route)}</title>
<style>/* preview frame */${SHELL_CSS}</style>
<style>/* WeChat built-in components */${COMPONENT_CSS}</style>
<style>/* app.wxss */
${appCss}</style>
<style>/* ${route}.wxss */
${pageCss}</style>
</head><body>
<div class="pv-phone" style="background:${win.navigationBarBackgroundColor}">
<div class="pv-status" style="color:${fg};fill:${fg}"><span>9:41</span><span class="pv-status__icons">${SIGNAL}${WIFI}${BATTERY}</span></div>
<div class="pv-nav" style="color:${fg};fill:${fg}">${isTab || home ? '' : `<div class="pv-nav__back">${BACK}</div>`}
<div class="pv-nav__title">${escapeHtml(win.navigationBarTitleText)}</div>
<div class="pv-capsule"><div class="pv-capsule__half">${MORE}</div><div class="pv-capsule__line"></div><div class="pv-capsule__half">${CLOSE}</div></div></div>
<div class="pv-body" style="background:${win.backgroundColor}"><div class="pv-scroll">
<wx-page>${body}</wx-page>
</div></div>
${tabBarHtml(app.tabBar, route, resolveImage)}
${isTab ? '' : '<div class="pv-home"></div>'}
</div>
</body></html>
`
}

module.exports = {PHONE, rpxToPx, rewriteSelector, wxssToCss, treeToHtml, imageResolver, pageHtml, COMPONENT_CSS}
