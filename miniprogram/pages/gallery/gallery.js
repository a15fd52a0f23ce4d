// Gallery: the library as a grid, newest first. <image> and previewImage cannot send
// the bearer token, so they load the signed URLs the server gives with each image
// (utils/media.js), refreshed when one has expired. An older server gives none: its
// thumbnails are fetched with wx.downloadFile and kept in the user data folder
// between sessions (utils/thumbcache.js), and previews downloaded before showing.
// A video's cell shows its poster and length; a tap plays it in previewMedia (photos
// keep previewImage, which swipes through the photos); saving downloads it with the
// token and hands it to saveVideoToPhotosAlbum (utils/album.js; utils/video.js says
// what can be).
// A Live Photo's still or a motion photo shows a LIVE / 动态 badge; a tap plays its
// video in previewMedia, and the long-press menu's 查看照片 shows the still in
// previewImage (where a swipe from any photo also reaches it). The MOV half of a Live
// Photo whose still is loaded is left out of the grid: the pair is the still's cell.
const api = require('../../utils/request')
const events = require('../../utils/events')
const privacy = require('../../utils/privacy')
const album = require('../../utils/album')
const thumbcache = require('../../utils/thumbcache')
const {signedMedia, isFresh} = require('../../utils/media')
const {pickedIds} = require('../../utils/picked')
const video = require('../../utils/video')

const PAGE = 60
const UNDO_MS = 5000
const PREVIEW_AROUND = 2 // neighbours fetched at preview size either side of the tapped one
const previews = {} // image id -> preview temp file, while the mini-program runs
const RETRY_MS = 60 * 1000 // a thumbnail that failed is asked for fresh URLs at most this often

function entry(image, picked) {
  // damaged: the server found the original missing or changed (scrub); it cannot be
  // saved, and backing the photo up again from the phone heals it.
  // suspect: this phone picked it from the album and it arrived without EXIF — WeChat
  // may have handed over a re-encoded copy rather than the camera's file.
  const media = signedMedia(image)
  const thumb = media ? media.thumbnail : thumbcache.get(image.id)
  const isVideo = video.isVideo(image)
  const moving = isVideo ? null : video.stillVideo(image)
  return {id: image.id, name: image.filename, thumb, media, urls: image.urls,
    damaged: !!image.damaged, suspect: image.exif === false && picked.has(image.id.slice(0, 24)),
    video: isVideo, badge: moving ? moving.badge : '', liveStill: isVideo ? image.live_still || '' : '',
    duration: isVideo ? video.durationText(image.duration) : '',
    unplayable: isVideo && media ? !video.playback(image, media).playable : false,
    // what utils/video.js decides by (signed_urls for a preview video it may name)
    facts: isVideo || moving ? {kind: image.kind, codec: image.codec, mime: image.mime, size: image.size,
      format: image.format, urls: image.urls, signed_urls: image.signed_urls} : null}
}

Component({
  data: {
    paired: false,
    images: [], // every loaded cell, the hidden MOV halves of Live Photos included
    shown: 0, // the cells the grid shows
    loading: false,
    done: false,
    error: '',
    undo: null, // {id, text} while an undo is offered
    saving: -1, // download progress of a save, -1 when none
    savingText: '正在下载原图',
    privacy: null, // {purpose} while WeChat's privacy agreement is asked
  },
  methods: {
    ...privacy.pageMethods, // WeChat's privacy agreement, asked on this page
    ...album.pageMethods, // save (a photo or a video) to the phone's album
    onLoad() {
      this.cursor = null
      this.retried = {} // image id -> when its fresh URLs were last asked for
      this.offs = [
        events.on('image.added', e => this.added(e.image)),
        events.on('image.restored', e => this.added(e.image)),
        events.on('image.deleted', e => this.removed(e.id)),
        // Events sent while the socket was down are lost: reload once it is back.
        events.on('close', () => { this.missed = true }),
        events.on('open', () => {
          if (!this.missed) return
          this.missed = false
          this.reload()
        }),
        // The server itself may have missed events (its processes lost Redis): the same.
        events.on('resync', () => this.reload()),
      ]
      events.connect()
      return this.reload()
    },
    onShow() {
      privacy.present(this)
    },
    onHide() {
      privacy.withdraw(this)
    },
    onUnload() {
      privacy.withdraw(this)
      ;(this.offs || []).forEach(off => off())
      clearTimeout(this.undoTimer)
    },
    async onPullDownRefresh() {
      await this.reload()
      wx.stopPullDownRefresh()
    },
    onReachBottom() {
      return this.more()
    },
    // Every change to the list goes through here: which MOV halves are hidden, and the count.
    show(images, extra) {
      const cells = video.hideLiveHalves(images)
      this.setData(Object.assign({images: cells, shown: cells.filter(c => !c.hidden).length}, extra))
    },
    reload() {
      this.cursor = null
      this.show([], {done: false, error: '', paired: api.isPaired()})
      return this.more()
    },
    async more() {
      if (!api.isPaired() || this.data.loading || this.data.done) return
      this.setData({loading: true})
      try {
        const query = `limit=${PAGE}` + (this.cursor ? `&cursor=${encodeURIComponent(this.cursor)}` : '')
        const page = await api.request({path: `/api/v1/images?${query}`})
        this.cursor = page.next_cursor
        const known = new Set(this.data.images.map(i => i.id))
        const picked = pickedIds()
        const fresh = page.items.filter(i => !known.has(i.id)).map(i => entry(i, picked))
        this.show(this.data.images.concat(fresh), {done: !page.next_cursor, loading: false})
        await Promise.all(fresh.map(image => this.loadThumb(image)))
      } catch (error) {
        this.setData({loading: false, error: error.message})
      }
    },
    async loadThumb(image) {
      if (image.thumb || !image.urls.thumbnail) return
      let path
      try {
        path = thumbcache.put(image.id, await api.download({path: image.urls.thumbnail}))
      } catch (error) {
        return // the cell stays grey; a refresh tries again
      }
      const index = this.data.images.findIndex(i => i.id === image.id)
      if (index >= 0) this.setData({[`images[${index}].thumb`]: path})
    },
    // A signed thumbnail that did not load has most likely expired: ask for the image
    // again (fresh URLs), once a minute at most per photo.
    async thumbFailed(e) {
      const id = e.currentTarget.dataset.id
      const image = this.data.images.find(i => i.id === id)
      if (!image || !image.media || Date.now() - (this.retried[id] || 0) < RETRY_MS) return
      this.retried[id] = Date.now()
      await this.refresh(image)
    },
    // The image with fresh signed URLs (and its cell updated), or the one given.
    async refresh(image) {
      let fresh
      try {
        fresh = await api.request({path: `/api/v1/images/${image.id}`})
      } catch (error) {
        return image
      }
      const media = signedMedia(fresh)
      const index = this.data.images.findIndex(i => i.id === image.id)
      if (!media || index < 0) return image
      const update = {[`images[${index}].media`]: media, [`images[${index}].thumb`]: media.thumbnail}
      if (this.data.images[index].facts) update[`images[${index}].facts.signed_urls`] = fresh.signed_urls
      this.setData(update)
      return this.data.images[index]
    },
    added(image) {
      if (!image || this.data.images.some(i => i.id === image.id)) return
      const item = entry(image, pickedIds())
      this.show([item].concat(this.data.images))
      return this.loadThumb(item)
    },
    removed(id) {
      const images = this.data.images.filter(i => i.id !== id)
      if (images.length !== this.data.images.length) this.show(images)
    },
    find(e) {
      return this.data.images.find(i => i.id === e.currentTarget.dataset.id)
    },
    // previewImage sends no headers: it is handed the signed preview URLs of the whole
    // gallery, in order, so a swipe goes through it; the tapped photo and its
    // neighbours get fresh URLs first if theirs are about to expire.
    // Videos are left out of it: a poster in previewImage would pass for a photo.
    async preview(e) {
      const image = this.find(e)
      if (!image) return
      if (image.video) return this.play(image)
      if (image.badge) return this.playStill(image)
      return this.previewPhoto(image)
    },
    async previewPhoto(image) {
      if (!image.media) return this.previewDownloaded(image)
      const at = this.data.images.indexOf(image)
      const near = this.data.images.slice(Math.max(0, at - PREVIEW_AROUND), at + PREVIEW_AROUND + 1)
      await Promise.all(near.filter(i => i.media && !isFresh(i.media)).map(i => this.refresh(i)))
      const shown = i => (i.media ? i.media.preview || i.media.original : previews[i.id] || i.thumb)
      const photos = this.data.images.filter(i => !i.video)
      const current = this.data.images[at]
      wx.previewImage({current: shown(current), urls: photos.map(shown).filter(Boolean)})
    },
    // previewMedia plays the signed original (no header needed; the player asks for
    // ranges), the poster shown while it loads. A codec the phone may not play is
    // said first; a preview video the server adds is played instead (utils/video.js).
    async play(image) {
      if (!image.media) {
        wx.showToast({title: '这台服务器没有给出可播放的地址，请升级服务器', icon: 'none'})
        return false
      }
      const current = isFresh(image.media) ? image : await this.refresh(image)
      const how = video.playback(current.facts, current.media)
      if (!how.playable) {
        const {confirm} = await promisify(wx.showModal, {title: '可能无法播放', content: how.note,
          confirmText: '仍要播放', cancelText: '取消'})
        if (!confirm) return false
      }
      await promisify(wx.previewMedia, {sources: [{url: how.url, type: 'video', poster: how.poster}], current: 0})
      return true
    },
    // A Live Photo's or motion photo's video (utils/video.js stillVideo), signed, its
    // still's preview as the poster.
    async playStill(image) {
      const current = isFresh(image.media) ? image : await this.refresh(image)
      const moving = current.media && video.stillVideo(current.facts)
      if (!moving) return this.previewPhoto(current) // its URLs could not be had
      const poster = current.media.preview || current.media.thumbnail || ''
      await promisify(wx.previewMedia, {sources: [{url: moving.url, type: 'video', poster}], current: 0})
      return true
    },
    // An older server's: local files, the tapped photo and its neighbours downloaded at
    // preview size, the rest as their thumbnails.
    async previewDownloaded(image) {
      const images = this.data.images
      const at = images.indexOf(image)
      wx.showLoading({title: '加载中'})
      try {
        const near = images.slice(Math.max(0, at - PREVIEW_AROUND), at + PREVIEW_AROUND + 1)
        await Promise.all(near.map(async item => {
          if (previews[item.id]) return
          try {
            previews[item.id] = await api.download({path: item.urls.preview || item.urls.original})
          } catch (error) {
            if (item === image) throw error // a neighbour falls back to its thumbnail
          }
        }))
        wx.hideLoading()
        const urls = images.map(i => previews[i.id] || i.thumb).filter(Boolean)
        wx.previewImage({current: previews[image.id], urls})
      } catch (error) {
        wx.hideLoading()
        wx.showToast({title: error.message, icon: 'none'})
      }
    },
    menu(e) {
      const image = this.find(e)
      if (!image) return
      const actions = [
        ...(image.badge ? [['查看照片', () => this.previewPhoto(image)]] : []),
        [image.video ? '保存视频到相册' : '保存原图到相册', () => this.save(image)],
        ['删除', () => this.remove(image)],
      ]
      wx.showActionSheet({
        itemList: actions.map(a => a[0]),
        itemColor: '#000000',
        success: ({tapIndex}) => actions[tapIndex][1](),
      })
    },
    // Deleting a Live Photo's still deletes only the still (no pair delete): the server
    // ends the pair while it is in the trash, and its MOV half, still listed, then
    // shows as a video of its own. Undo restores the still and the pair.
    async remove(image) {
      try {
        await api.request({path: `/api/v1/images/${image.id}`, method: 'DELETE'})
      } catch (error) {
        wx.showToast({title: error.message, icon: 'none'})
        return
      }
      this.removed(image.id)
      this.offerUndo(image)
    },
    offerUndo(image) {
      clearTimeout(this.undoTimer)
      this.undoImage = image
      this.setData({undo: {id: image.id, text: '已移到回收站'}})
      this.undoTimer = setTimeout(() => this.setData({undo: null}), UNDO_MS)
    },
    async undoDelete() {
      const image = this.undoImage
      clearTimeout(this.undoTimer)
      this.setData({undo: null})
      if (!image) return
      try {
        const restored = await api.request({path: `/api/v1/trash/${image.id}/restore`, method: 'POST'})
        await this.added(restored)
      } catch (error) {
        wx.showToast({title: error.message, icon: 'none'})
      }
    },
    goSettings() {
      wx.switchTab({url: '/pages/settings/settings'})
    },
  },
})

function promisify(fn, options) {
  return new Promise((resolve, reject) => fn(Object.assign({}, options, {success: resolve, fail: reject})))
}
