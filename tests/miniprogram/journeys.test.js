/**
 * Whole journeys through the pages against a real Tubei server: pair, back three
 * photos up (one already there), see them in the gallery, delete and undo, save.
 * @jest-environment jsdom
 */
const fs = require('fs')
const {freshSession} = require('./kit/session')
const {makePhotos, uploadDirect} = require('./kit/server')
const {loadPage, recordRenders, until, text} = require('./kit/pages')

const session = freshSession('tubei-journeys-')
let photos

beforeAll(() => {
  photos = makePhotos(session.tmp, [
    {name: 'IMG_0001.jpg', width: 1600, height: 1200},
    {name: 'IMG_0002.jpg', width: 1600, height: 1200},
    {name: 'IMG_0003.jpg', width: 640, height: 480},
  ])
})

test('an unpaired phone says so on every page', async () => {
  const settings = loadPage('settings')
  await settings.instance.onLoad()
  await settings.instance.onShow()
  expect(settings.data.status).toBe('unpaired')
  expect(text(settings, '.status__text')).toBe('未配对')

  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  expect(backup.querySelector('.unpaired')).toBeTruthy()
})

test('a wrong code is refused in Chinese and an unreachable server is named', async () => {
  const {server} = session
  const settings = loadPage('settings')
  settings.instance.onLoad()
  settings.setData({server: server.url, code: '000000'})
  await settings.instance.pair()
  expect(settings.data.status).toBe('unpaired')
  expect(settings.data.error).toBe('配对码不对，或已使用、已过期')

  settings.setData({server: '127.0.0.1:1', code: '123456'})
  await settings.instance.pair()
  expect(settings.data.status).toBe('unreachable')
  expect(text(settings, '.status__text')).toBe('服务器无法连接')
  // WeChat's cause stays in the sentence, with what to do about it.
  expect(settings.data.error).toMatch(/^无法连接服务器（connect ECONNREFUSED 127\.0\.0\.1:1）/)
  expect(text(settings, '.status__why')).toContain('同一个 Wi-Fi')
})

test('pair by scanning the QR code the server prints', async () => {
  const {kit, server} = session
  kit.ui.scanResult = server.pairingCode('mum')
  const settings = loadPage('settings')
  settings.instance.onLoad()
  settings.instance.scan()
  await until(() => settings.data.status === 'paired', {what: 'paired'})
  expect(kit.wx.getStorageSync('tubei.token')).toMatch(/\S{20,}/)
  expect(kit.wx.getStorageSync('tubei.server')).toBe(server.url)
  expect(text(settings, '.status__text')).toContain('已配对')
  const pairCall = kit.log.find(e => e.api === 'request' && e.url.endsWith('/auth/pair'))
  expect(pairCall.method).toBe('POST')
})

test('back up three photos: one already safe, two uploaded with rising progress', async () => {
  const {kit, server} = session
  // Another device already sent the third photo.
  await uploadDirect(server, server.token('mum'), photos[2].path)

  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  const renders = recordRenders(backup, page => ({
    progress: page.data.items.map(i => (i.state === 'uploading' ? i.progress : null)),
    shown: (page.querySelectorAll('.item__state') || []).map(n => n.dom.textContent.trim()),
  }))

  kit.media = photos.slice()
  backup.querySelector('.btn-choose').dispatchEvent('tap') // the "+" tile
  const settled = i => ['done', 'exists', 'failed'].includes(i.state)
  await until(() => backup.data.items.length === 3 && backup.data.items.every(settled), {what: 'settled'})
  const states = backup.data.items.map(i => i.state)
  expect(states).toEqual(['done', 'done', 'exists'])
  expect(backup.data.summary).toBe('2 张已备份 · 1 张已存在')
  expect(text(backup, '.summary')).toBe('2 张已备份 · 1 张已存在')
  expect(backup.querySelectorAll('.item_exists')[0].dom.textContent).toContain('已存在')

  // The photo the server had was never sent.
  const uploads = kit.log.filter(e => e.api === 'uploadFile')
  expect(uploads).toHaveLength(2)
  uploads.forEach(u => expect(u.header['X-Upload-Id']).toMatch(/^up-/))
  const check = kit.log.find(e => e.api === 'request' && e.url.endsWith('/images/check'))
  expect(check.method).toBe('POST')

  // Progress rose in the data and in the rendered WXML before the end.
  const first = renders.map(r => r.progress[0]).filter(p => typeof p === 'number')
  expect(first.length).toBeGreaterThan(2)
  expect(first).toEqual([...first].sort((a, b) => a - b))
  expect(first[first.length - 1]).toBeGreaterThan(first[0])
  const percents = renders.flatMap(r => r.shown).filter(s => /^\d+%$/.test(s)).map(s => parseInt(s, 10))
  expect(percents.some(p => p > 0 && p < 100)).toBe(true)
})

test('a failed photo is retried with one tap', async () => {
  const {kit, tmp} = session
  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  const [fresh] = makePhotos(tmp, [{name: 'IMG_0004.jpg', width: 800, height: 600, seed: 44}])
  kit.media = [fresh]
  const choosing = backup.instance.choose()
  // Let it hash and check, then cut the network before the upload finishes.
  await until(() => backup.data.items.length && backup.data.items[0].state !== 'hashing', {what: 'checked'})
  kit.setOnline(false)
  await choosing
  expect(backup.data.items[0].state).toBe('failed')
  expect(backup.data.summary).toBe('1 张失败')
  expect(text(backup, '.retry')).toBe('1 张失败 — 点此重试')

  kit.setOnline(true)
  backup.querySelector('.retry').dispatchEvent('tap') // the one tap
  await until(() => backup.data.items[0].state === 'done', {what: 'retried'})
  expect(backup.data.summary).toBe('1 张已备份')
})

test('the gallery shows them, its <image>s loading signed URLs without the token', async () => {
  const {kit, server} = session
  const gallery = loadPage('gallery')
  const downloads = kit.log.filter(e => e.api === 'downloadFile').length
  await gallery.instance.onLoad()
  expect(gallery.data.images).toHaveLength(4)
  expect(gallery.querySelectorAll('.grid__cell')).toHaveLength(4)
  gallery.data.images.forEach(i => {
    expect(i.thumb.startsWith(`${server.url}/api/v1/images/${i.id}/thumbnail?`)).toBe(true)
    expect(i.thumb).toMatch(/[?&]signature=/)
    expect(i.thumb).not.toContain(kit.wx.getStorageSync('tubei.token'))
  })
  const shown = await kit.images.showPage(gallery, 'pages/gallery/gallery', 'grid__img')
  expect(shown.map(r => r.ok)).toEqual([true, true, true, true])
  expect(kit.log.filter(e => e.api === 'downloadFile').length).toBe(downloads) // none per thumbnail

  // Pull to refresh ends the pull.
  await gallery.instance.onPullDownRefresh()
  expect(kit.lastCall('stopPullDownRefresh')).toBeTruthy()
  expect(gallery.data.images).toHaveLength(4)

  // Tap the first cell: previewImage opens its signed preview URL, the gallery to swipe.
  gallery.querySelectorAll('.grid__cell')[0].dispatchEvent('tap')
  const preview = await until(() => kit.lastCall('previewImage'), {what: 'preview'})
  expect(preview.current).toBe(gallery.data.images[0].media.preview)
  expect(preview.current).toMatch(/thumbnail\?size=preview&.*signature=/)
  expect(preview.urls).toHaveLength(4)
  await until(() => preview.shown !== null, {what: 'the preview shown'})
  expect(preview.shown).toBe(true)
  expect(kit.log.filter(e => e.api === 'downloadFile').length).toBe(downloads)
})

test('after the socket drops, the gallery reloads and finds what it missed', async () => {
  const {kit, server, tmp} = session
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const events = require('../../miniprogram/utils/events')
  await until(() => events.isOpen(), {what: 'socket open'})
  const count = gallery.data.images.length

  kit.setOnline(false) // the phone loses the network; the socket goes with it
  await until(() => !events.isOpen(), {what: 'socket closed'})
  const [missed] = makePhotos(tmp, [{name: 'IMG_MISSED.jpg', width: 320, height: 240, seed: 99}])
  await uploadDirect(server, server.token('mum'), missed.path) // another device, meanwhile
  kit.setOnline(true)

  await until(() => gallery.data.images.length === count + 1, {what: 'reload after reconnect', timeout: 10000})
  const sha = require('crypto').createHash('sha256').update(fs.readFileSync(missed.path)).digest('hex')
  expect(gallery.data.images.map(i => i.id)).toContain(sha)
  gallery.instance.onUnload()
})

test('delete moves to the trash, undo brings it back, and other devices see both', async () => {
  const {kit} = session
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const other = loadPage('gallery') // same events socket: the live updates path
  await other.instance.onLoad()
  const victim = gallery.data.images[1]

  kit.ui.actionSheet = 1 // 删除
  // Through the rendered grid: a long press on the second cell.
  gallery.querySelectorAll('.grid__cell')[1].dispatchEvent('longpress')
  await until(() => gallery.data.undo, {what: 'undo offer'})
  expect(gallery.data.images.map(i => i.id)).not.toContain(victim.id)
  expect(text(gallery, '.undo__text')).toBe('已移到回收站')
  await until(() => !other.data.images.some(i => i.id === victim.id), {what: 'image.deleted event'})

  gallery.querySelector('.undo__btn').dispatchEvent('tap')
  await until(() => gallery.data.undo === null, {what: 'undo'})
  // The toast goes at once; the photo is back once the server has restored it.
  await until(() => gallery.data.images.some(i => i.id === victim.id), {what: 'restored'})
  await until(() => other.data.images.some(i => i.id === victim.id), {what: 'image.restored event'})
  gallery.instance.onUnload()
  other.instance.onUnload()
})

test('save the original to the album, asking for the permission first', async () => {
  const {kit} = session
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const image = gallery.data.images[0]
  const seen = recordRenders(gallery, page => page.data.saving)

  kit.ui.authorize = true
  expect(await gallery.instance.save(image)).toBe(true)
  expect(kit.lastCall('authorize').scope).toBe('scope.writePhotosAlbum')
  const download = kit.log.filter(e => e.api === 'downloadFile' && e.url.endsWith('/original')).pop()
  expect(download.header['X-Download-Id']).toMatch(/^save-/)
  expect(seen.some(p => p > 0)).toBe(true)
  // The album got the exact original bytes: their sha256 is the image id.
  const saved = kit.album.pop()
  expect(require('crypto').createHash('sha256').update(saved).digest('hex')).toBe(image.id)

  // A refusal is explained, with a way to the settings.
  kit.ui.authSetting['scope.writePhotosAlbum'] = false
  expect(await gallery.instance.save(image)).toBe(false)
  expect(kit.lastCall('showModal').title).toBe('无法保存到相册')
  await until(() => kit.lastCall('openSetting'), {what: 'openSetting'})
  gallery.instance.onUnload()
})

test('the trash restores and purges', async () => {
  const {kit} = session
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const [a, b] = gallery.data.images
  await gallery.instance.remove(a)
  await gallery.instance.remove(b)

  const trash = loadPage('trash')
  await trash.instance.onLoad()
  expect(trash.data.images.map(i => i.id).sort()).toEqual([a.id, b.id].sort())
  expect(trash.querySelectorAll('.trash__item')).toHaveLength(2)
  const downloads = kit.log.filter(e => e.api === 'downloadFile').length
  const thumbs = await kit.images.showPage(trash, 'pages/trash/trash', 'trash__thumb')
  expect(thumbs.map(r => r.ok)).toEqual([true, true]) // signed URLs, loaded without the token
  expect(kit.log.filter(e => e.api === 'downloadFile').length).toBe(downloads)

  await trash.instance.restore({currentTarget: {dataset: {id: a.id}}})
  kit.ui.modalConfirm = true
  expect(await trash.instance.purge({currentTarget: {dataset: {id: b.id}}})).toBe(true)
  expect(trash.data.images).toHaveLength(0)
  expect(text(trash, '.empty')).toBe('回收站是空的')
  gallery.instance.onUnload()
})

test("progress also comes from the server's events socket", async () => {
  const {kit, tmp} = session
  const events = require('../../miniprogram/utils/events')
  const backup = loadPage('backup')
  backup.instance.onLoad()
  backup.instance.onShow()
  await until(() => events.isOpen(), {what: 'socket open'})
  const seen = []
  const off = events.on('upload.progress', e => seen.push(e))
  const renders = recordRenders(backup, page => page.data.items.map(i => i.progress))
  kit.ui.uploadTaskProgress = false // only the server says how far it has got
  const [big] = makePhotos(tmp, [{name: 'IMG_EVENTS.jpg', width: 2400, height: 1800, seed: 17}])
  kit.media = [big]
  await backup.instance.choose()
  kit.ui.uploadTaskProgress = true
  off()
  expect(backup.data.items[0].state).toBe('done')
  const mine = seen.filter(e => e.upload_id === backup.instance.uploader.items[0].uploadId)
  expect(mine.length).toBeGreaterThan(0)
  expect(mine[mine.length - 1].received).toBe(mine[mine.length - 1].total)
  const between = renders.map(r => r[0]).filter(p => p > 0 && p < 100)
  expect(between.length).toBeGreaterThan(0) // the bar moved before the answer came
})
