// Where things are on a page's screen, for the layout tests (phone.test.js): rects in
// CSS pixels of the viewport, containment and overlap, the controls a tap reaches, and a
// touch swipe through Chromium's input pipeline.
const {PHONE} = require('./harness')

const EPSILON = 0.5 // px of rounding

// The rect of the one element a locator matches, in CSS pixels of the viewport.
function rectOf(locator) {
  return locator.evaluate(el => {
    const r = el.getBoundingClientRect()
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height}
  })
}

function inside(rect, outer) {
  return rect.width > 0 && rect.height > 0 &&
    rect.left >= outer.left - EPSILON && rect.right <= outer.right + EPSILON &&
    rect.top >= outer.top - EPSILON && rect.bottom <= outer.bottom + EPSILON
}

function overlapping(a, b) {
  return Math.min(a.right, b.right) - Math.max(a.left, b.left) > EPSILON &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > EPSILON
}

// The page scrolls only vertically: nothing in the document is wider than the screen.
async function widths(page) {
  return page.evaluate(() => ({scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth}))
}
async function expectNoSidewaysScroll(page) {
  const {scrollWidth, innerWidth} = await widths(page)
  expect(innerWidth).toBe(PHONE.viewport.width)
  expect(scrollWidth).toBeLessThanOrEqual(innerWidth)
}

// Each named control: wholly inside the viewport, the element a tap at its centre lands
// on (nothing covers it), and apart from every other one. Returns what is wrong, by name.
async function controlProblems(page, controls) {
  const view = await page.evaluate(() => ({left: 0, top: 0, right: innerWidth, bottom: innerHeight}))
  const problems = []
  const rects = {}
  for (const [name, locator] of Object.entries(controls)) {
    const rect = await rectOf(locator)
    rects[name] = rect
    if (!inside(rect, view)) problems.push(`${name} is not wholly on the screen: ${JSON.stringify(rect)}`)
    const hit = await locator.evaluate(el => {
      const r = el.getBoundingClientRect()
      const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
      return at !== null && (at === el || el.contains(at))
    })
    if (!hit) problems.push(`a tap at the centre of ${name} lands on something else`)
  }
  const names = Object.keys(rects)
  for (let i = 0; i < names.length; i += 1) {
    for (let j = i + 1; j < names.length; j += 1) {
      if (overlapping(rects[names[i]], rects[names[j]])) problems.push(`${names[i]} overlaps ${names[j]}`)
    }
  }
  return problems
}

// A drag by one finger, through Chromium's input pipeline (touch events, and the pointer
// events and scrolling it makes of them), from [x0, y0] to [x1, y1].
async function touchDrag(page, [x0, y0], [x1, y1]) {
  const cdp = await page.context().newCDPSession(page)
  const point = (x, y) => [{x, y, radiusX: 4, radiusY: 4, force: 1, id: 1}]
  await cdp.send('Input.dispatchTouchEvent', {type: 'touchStart', touchPoints: point(x0, y0)})
  const steps = 8
  for (let i = 1; i <= steps; i += 1) {
    await cdp.send('Input.dispatchTouchEvent', {type: 'touchMove', touchPoints: point(x0 + ((x1 - x0) * i) / steps, y0 + ((y1 - y0) * i) / steps)})
  }
  // The finger rests before it lifts: a lift at speed starts a fling, and Chromium takes
  // the next tap (a test's on 关闭, say) as the one that stops it, with no click.
  await new Promise(resolve => setTimeout(resolve, 200))
  await cdp.send('Input.dispatchTouchEvent', {type: 'touchMove', touchPoints: point(x1, y1)})
  await cdp.send('Input.dispatchTouchEvent', {type: 'touchEnd', touchPoints: []})
  await cdp.detach()
}

// A horizontal swipe from x0 to x1 at height y.
function swipe(page, x0, x1, y) {
  return touchDrag(page, [x0, y], [x1, y])
}

module.exports = {EPSILON, rectOf, inside, overlapping, widths, expectNoSidewaysScroll, controlProblems, touchDrag, swipe}
