/**
 * The preview pipeline (scripts/preview) without a browser: a page rendered by
 * miniprogram-simulate becomes an HTML document with its WXSS turned into CSS.
 * scripts/preview screenshots such documents in Chromium; this only reads them.
 * @jest-environment jsdom
 */
const fs = require('fs')
const os = require('os')
const path = require('path')
const {createKit} = require('./kit/wx')
const {loadPage, ROOT} = require('./kit/pages')
const {pageHtml, wxssToCss, rewriteSelector, rpxToPx, imageResolver} = require('./preview/html')

// A 1x1 PNG, as a photo the kit would have handed the page.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

let tmp
let html
let missing

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-preview-'))
  const kit = createKit({tmpDir: tmp})
  global.wx = kit.wx
  kit.wx.setStorageSync('tubei.server', 'http://127.0.0.1:9')
  kit.wx.setStorageSync('tubei.token', 'token')
  const photo = path.join(tmp, 'wxtmp-photo.png')
  fs.writeFileSync(photo, PNG)

  const backup = loadPage('backup')
  backup.instance.onShow()
  backup.setData({
    items: [
      {key: 'a', thumb: photo, state: 'uploading', stateText: '上传中', progress: 40},
      {key: 'b', thumb: photo, state: 'exists', stateText: '已存在', progress: 100},
      {key: 'c', thumb: path.join(tmp, 'gone.jpg'), state: 'failed', stateText: '失败', progress: 0},
    ],
    summary: '1 张已存在 · 1 张失败',
    failed: 1,
  })
  missing = []
  html = pageHtml({root: ROOT, route: 'pages/backup/backup', tree: backup.toJSON(),
    resolveImage: imageResolver({root: ROOT, missing})})
})

afterAll(() => fs.rmSync(tmp, {recursive: true, force: true}))

test('WXML tags become WeChat elements and keep their classes and data', () => {
  expect(html).toContain('<wx-view data-key="a" class="weui-uploader__file item item_uploading weui-uploader__file_status">')
  expect(html).toContain('<wx-text class="item__state">40%</wx-text>')
  expect(html).toContain('<wx-view class="item__bar-inner" style="width: 40%">')
  expect(html).toContain('<wx-view class="weui-uploader__tips retry">')
  expect(html).toContain('1 张失败 — 点此重试')
  expect(html).not.toMatch(/\b(bindtap|main--)/) // events and simulate's class prefixes stay out
})

test('images show the files the page was given, as data URLs', () => {
  const src = `data:image/png;base64,${PNG.toString('base64')}`
  expect(html.split(`background-image:url(&quot;${src}&quot;)`)).toHaveLength(3) // two photos found
  expect(html).toContain('background-size:cover') // mode="aspectFill"
  expect(missing).toEqual([path.join(tmp, 'gone.jpg')]) // the third: reported, left blank
})

test('WXSS becomes CSS: rpx to px at 375 px, imports inlined, tag selectors mapped', () => {
  expect(html).not.toMatch(/\d+rpx/)
  // backup.wxss: 159rpx tiles, 8rpx badge offset
  expect(html).toMatch(/\.weui-uploader__file, \.weui-uploader__input-box\{[^}]*width: 79\.5px/)
  expect(html).toContain('left: 4px; bottom: 4px;')
  // app.wxss imports WeUI; its `page` rules now style the page element
  expect(html).toMatch(/\.weui-uploader__file\{float:left/)
  expect(html).toMatch(/wx-page\{line-height:1\.6/)
  expect(html).not.toContain('@import')
})

test('the frame: title from the page json, the tab bar from app.json', () => {
  expect(html).toContain('<div class="pv-nav__title">备份</div>')
  // The selected tab: its green icon (resolved to an image URL) and green text.
  expect(html).toMatch(/pv-tab_selected"><div class="pv-tab__icon" style="background-image:url\(&quot;[^"]+&quot;\)"><\/div><div class="pv-tab__text" style="color:#07c160">备份</)
  expect(html).toContain('>相册</div>')
  expect(html).toContain('>设置</div>')
})

test('the converters on their own', () => {
  expect(rpxToPx('margin: 0 32rpx -16.5rpx .5rpx')).toBe('margin: 0 16px -8.25px 0.25px')
  expect(rewriteSelector('[data-weui-theme="light"],page')).toBe('[data-weui-theme="light"],wx-page')
  expect(rewriteSelector('button.weui-btn:not(.x) > text::before')).toBe('wx-button.weui-btn:not(.x) > wx-text::before')
  expect(rewriteSelector('.weui-cell_view .image-box :nth-child(2n+1)')).toBe('.weui-cell_view .image-box :nth-child(2n+1)')
  const css = wxssToCss(path.join(ROOT, 'pages/gallery/gallery.wxss'), {root: ROOT})
  expect(css).toContain('.grid__cell{ width: calc(25% - 2px);')
})
