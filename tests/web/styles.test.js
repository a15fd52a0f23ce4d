/** @jest-environment node */
// The built stylesheets (web/dist/assets/*.css), as the minifier left them.
const fs = require('fs')
const path = require('path')
const {ROOT} = require('../miniprogram/kit/server')

test('the built stylesheets give every height of the screen in dvh after the same in vh', () => {
  // A phone's vh counts the area under its address bar; dvh does not, and an engine
  // without dvh keeps the vh before it. A minifier that merged the two would lose that.
  const assets = path.join(ROOT, 'web', 'dist', 'assets')
  if (!fs.existsSync(assets)) throw new Error(`${assets} is missing: build the web app first (npm run build:web)`)
  const css = fs.readdirSync(assets).filter(name => name.endsWith('.css'))
    .map(name => fs.readFileSync(path.join(assets, name), 'utf8')).join('\n')
  const rules = [...css.matchAll(/\{([^{}]*)\}/g)].map(([, body]) => body.split(';').map(d => d.trim()))
  const problems = []
  let pairs = 0
  // Within a rule the minifier may move declarations about, but keeps their order.
  for (const rule of rules) {
    rule.forEach((declaration, i) => {
      if (!/^(min-|max-)?height:.*\b\d+vh\b/.test(declaration)) return
      const dynamic = declaration.replace(/\b(\d+)vh\b/g, '$1dvh')
      if (rule.indexOf(dynamic) > i) pairs += 1
      else problems.push(`${declaration} is not followed by ${dynamic}`)
    })
    rule.forEach((declaration, i) => {
      const fallback = declaration.replace(/\b(\d+)dvh\b/g, '$1vh')
      if (fallback !== declaration && !rule.slice(0, i).includes(fallback)) problems.push(`${declaration} has no ${fallback} before it`)
    })
  }
  expect(problems).toEqual([])
  expect(pairs).toBeGreaterThanOrEqual(5) // the sign-in page, the grid and scrubber, the upload panel twice
})
