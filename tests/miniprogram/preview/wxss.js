// WXSS as a browser draws it: rpx to px for a 375-px-wide phone, WXML tag selectors to
// WeChat's own custom elements (<wx-view>, ...), @import inlined. Used by html.js.
const fs = require('fs')
const path = require('path')

const PHONE = {width: 375, height: 812, statusBar: 44, navBar: 44, tabBar: 49, homeIndicator: 34}
// 750 rpx are the screen's width.
const RPX = PHONE.width / 750

// The WXML built-in components a WXSS tag selector can name.
const TAGS = new Set(['view', 'text', 'image', 'button', 'input', 'textarea', 'icon', 'progress',
  'scroll-view', 'swiper', 'swiper-item', 'navigator', 'label', 'form', 'switch', 'checkbox',
  'checkbox-group', 'radio', 'radio-group', 'slider', 'picker', 'picker-view', 'picker-view-column',
  'rich-text', 'movable-area', 'movable-view', 'cover-view', 'cover-image', 'video', 'camera', 'map',
  'canvas', 'editor', 'page'])

function formatNumber(n) {
  return String(Math.round(n * 1000) / 1000)
}

// "24rpx" -> "12px" (750 rpx to the 375-px screen).
function rpxToPx(css) {
  return String(css).replace(/(-?(?:\d+\.?\d*|\.\d+))rpx\b/g, (m, n) => `${formatNumber(parseFloat(n) * RPX)}px`)
}

// --- WXSS -> CSS ---------------------------------------------------------------------

// Copies a quoted string starting at css[i]; returns the index after it.
function skipString(css, i) {
  const quote = css[i]
  let j = i + 1
  while (j < css.length && css[j] !== quote) j += css[j] === '\\' ? 2 : 1
  return j + 1
}

// Drops comments (strings are left alone).
function stripComments(css) {
  let out = ''
  let i = 0
  while (i < css.length) {
    const c = css[i]
    if (c === '"' || c === "'") {
      const end = skipString(css, i)
      out += css.slice(i, end)
      i = end
    } else if (c === '/' && css[i + 1] === '*') {
      const end = css.indexOf('*/', i + 2)
      i = end < 0 ? css.length : end + 2
    } else {
      out += c
      i += 1
    }
  }
  return out
}

// Index of the first of `stops` at bracket depth 0 from i, or css.length.
function scanTo(css, i, stops) {
  let depth = 0
  while (i < css.length) {
    const c = css[i]
    if (c === '"' || c === "'") { i = skipString(css, i); continue }
    if (depth <= 0 && stops.includes(c)) return i
    if (c === '(' || c === '[') depth += 1
    else if (c === ')' || c === ']') depth -= 1
    i += 1
  }
  return css.length
}

// Index just after the "}" matching the "{" at css[i].
function blockEnd(css, i) {
  let depth = 0
  for (let j = i; j < css.length; j += 1) {
    const c = css[j]
    if (c === '"' || c === "'") { j = skipString(css, j) - 1; continue }
    if (c === '{') depth += 1
    else if (c === '}') {
      depth -= 1
      if (depth === 0) return j + 1
    }
  }
  return css.length
}

const IDENT = /[A-Za-z0-9_\-\u00a0-\uffff]/

// One selector list: tag names of WXML components become WeChat's elements
// (view -> wx-view, page -> wx-page); classes, ids, attributes, pseudos stay.
function rewriteSelector(selector) {
  let out = ''
  let i = 0
  const s = selector
  const ident = from => {
    let j = from
    while (j < s.length && (IDENT.test(s[j]) || s[j] === '\\')) j += s[j] === '\\' ? 2 : 1
    return j
  }
  while (i < s.length) {
    const c = s[i]
    if (c === '"' || c === "'") {
      const end = skipString(s, i)
      out += s.slice(i, end)
      i = end
    } else if (c === '[') {
      const end = scanTo(s, i + 1, ']') + 1
      out += s.slice(i, end)
      i = end
    } else if (c === '.' || c === '#') {
      const end = ident(i + 1)
      out += s.slice(i, end)
      i = end
    } else if (c === ':') {
      let j = i
      while (s[j] === ':') j += 1
      const end = ident(j)
      out += s.slice(i, end)
      i = end
    } else if (/[A-Za-z_]/.test(c)) {
      const end = ident(i)
      const name = s.slice(i, end)
      out += TAGS.has(name.toLowerCase()) ? `wx-${name.toLowerCase()}` : name
      i = end
    } else {
      out += c
      i += 1
    }
  }
  return out
}

const NESTED_AT_RULES = /^@(media|supports|document|container|layer)\b/i

function rewriteRules(css) {
  let out = ''
  let i = 0
  while (i < css.length) {
    const stop = scanTo(css, i, '{;}')
    const prelude = css.slice(i, stop).trim()
    if (stop >= css.length) {
      out += css.slice(i)
      break
    }
    if (css[stop] === ';' || css[stop] === '}') {
      if (prelude) out += `${prelude};\n`
      i = stop + 1
      continue
    }
    const end = blockEnd(css, stop)
    const body = css.slice(stop + 1, end - 1)
    if (NESTED_AT_RULES.test(prelude)) out += `${prelude}{\n${rewriteRules(body)}}\n`
    else if (prelude.startsWith('@')) out += `${prelude}{${body}}\n`
    else out += `${rewriteSelector(prelude)}{${body}}\n`
    i = end
  }
  return out
}

const IMPORT = /@import\s+(?:url\(\s*)?["']([^"']+)["']\s*\)?\s*;/g

// A WXSS file and what it imports, as browser CSS. `root` resolves "/abs" imports.
function wxssToCss(file, {root} = {}) {
  const seen = new Set()
  const inline = f => {
    if (seen.has(f)) return ''
    seen.add(f)
    const text = stripComments(fs.readFileSync(f, 'utf8'))
    return text.replace(IMPORT, (m, target) => {
      const resolved = target.startsWith('/') && root ? path.join(root, target) : path.resolve(path.dirname(f), target)
      return `\n/* ${path.basename(resolved)} */\n${inline(resolved)}\n`
    })
  }
  return rewriteRules(rpxToPx(inline(file)))
}

module.exports = {PHONE, rpxToPx, rewriteSelector, wxssToCss}
