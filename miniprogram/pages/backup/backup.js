// Backup: choose photos and videos (album, or chat files for byte-exact originals), watch each go
// up, retry the failed with one tap, pick again what a restart lost. The uploader does
// the work; this page renders its items, and asks WeChat's privacy question in place.
const api = require('../../utils/request')
const events = require('../../utils/events')
const privacy = require('../../utils/privacy')
const {kind} = require('../../utils/wxerror')
const {Uploader} = require('../../utils/uploader')
const {durationText} = require('../../utils/video')

// What the server accepts, by a chat file's name (chooseMessageFile filters by
// extension only for type "file", and originals sent as files are "file").
const PHOTO_NAME = /\.(jpe?g|png|gif|webp|heic|heif|avif|tiff?|bmp|mpo)$/i
const VIDEO_NAME = /\.(mp4|m4v|mov|3gp|webm)$/i

// 张 counts photos; once a video is among them, 项 counts both.
function summaryText({done, exists, failed, missing}, unit = '张') {
  const parts = []
  if (done) parts.push(`${done} ${unit}已备份`)
  if (exists) parts.push(`${exists} ${unit}已存在`)
  if (failed) parts.push(`${failed} ${unit}失败`)
  if (missing) parts.push(`${missing} ${unit}需重新选择`)
  return parts.join(' · ')
}

function sizeText(bytes) {
  if (!bytes) return ''
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`
  return `${Math.max(1, Math.round(bytes / 1024))} KB`
}

function etaText(seconds) {
  if (seconds === null || seconds === undefined) return ''
  if (seconds < 60) return '不到 1 分钟'
  if (seconds < 3600) return `约 ${Math.ceil(seconds / 60)} 分钟`
  return `约 ${Math.floor(seconds / 3600)} 小时 ${Math.ceil((seconds % 3600) / 60)} 分钟`
}

// What to tell the person when a pick did not happen.
function pickNotice(error, what) {
  switch (kind(error)) {
    case 'cancel':
      return ''
    case 'privacy':
      return `你没有同意图备的隐私保护指引，所以无法${what}。再点一次就能重新查看并同意；这与手机的相册权限无关。`
    case 'undeclared':
      return `这个版本的图备没有在隐私保护指引中声明${what}所需的信息（${error.errMsg}），请告诉维护图备的人。`
    case 'denied':
      return `微信没有得到访问相册的权限（${error.errMsg}）。可以在右上角 ··· → 设置 里打开。`
    default:
      return `无法${what}（${(error && error.errMsg) || '未知错误'}）`
  }
}

Component({
  data: {
    paired: false,
    items: [],
    summary: '',
    failed: 0,
    unit: '张', // what the counts count: 张 (photos), 项 once a video is among them
    active: 0,
    banner: '', // while a backup runs: keep the mini-program in front
    notice: '', // why the last pick did not happen
    privacy: null, // {purpose} while WeChat's privacy agreement is asked
  },
  methods: {
    ...privacy.pageMethods, // WeChat's privacy agreement, asked on this page
    onLoad() {
      this.uploader = new Uploader({onChange: items => this.render(items)})
      if (api.isPaired()) {
        events.connect()
        this.uploader.resumePending()
      }
    },
    onShow() {
      privacy.present(this)
      this.setData({paired: api.isPaired()})
    },
    onHide() {
      privacy.withdraw(this)
    },
    onUnload() {
      privacy.withdraw(this)
      if (this.uploader) this.uploader.destroy()
    },
    render(items) {
      const counts = this.uploader.summary()
      const eta = etaText(counts.eta)
      const unit = items.some(i => i.kind === 'video') ? '项' : '张'
      this.setData({
        items: items.map(({key, thumb, state, stateText, progress, error, name, size, suspect, kind, duration}) =>
          ({key, thumb, state, stateText, progress, error, name, size: sizeText(size), suspect,
            video: kind === 'video', duration: kind === 'video' ? durationText(duration) : ''})),
        summary: summaryText(counts, unit),
        unit,
        failed: counts.failed,
        active: counts.active,
        banner: counts.active
          ? `正在备份，还剩 ${counts.active} ${unit}${eta ? `，${eta}` : ''}。请让图备留在前台、不要锁屏：` +
            '切到后台约 5 秒后微信会暂停上传，回来后会自动继续。'
          : '',
      })
    },
    pick(choose, options, what) {
      this.setData({notice: ''})
      return new Promise(resolve => {
        choose(Object.assign({}, options, {
          success: resolve,
          fail: error => {
            this.setData({notice: pickNotice(error, what)})
            resolve(null)
          },
        }))
      })
    },
    async choose() {
      if (!api.isPaired()) {
        wx.switchTab({url: '/pages/settings/settings'})
        return []
      }
      // mix: videos come with the photos (each tempFile says its fileType, size and
      // duration); maxDuration bounds only what the camera records now.
      const picked = await this.pick(wx.chooseMedia, {count: 20, mediaType: ['mix'],
        sourceType: ['album', 'camera'], sizeType: ['original'], maxDuration: 60}, '选择照片或视频')
      return picked ? this.uploader.add(picked.tempFiles, {source: 'album'}) : []
    },
    // Byte-exact originals: photos sent as 原图 (or as files) to 文件传输助手, picked
    // from that chat with their names.
    async chooseChat() {
      if (!api.isPaired()) {
        wx.switchTab({url: '/pages/settings/settings'})
        return []
      }
      const picked = await this.pick(wx.chooseMessageFile, {count: 100, type: 'all'}, '选择聊天文件')
      if (!picked) return []
      const kept = picked.tempFiles.filter(f => f.type === 'image' || f.type === 'video' ||
        PHOTO_NAME.test(f.name || '') || VIDEO_NAME.test(f.name || ''))
        .map(f => (f.type === 'video' || VIDEO_NAME.test(f.name || '') ? Object.assign({}, f, {fileType: 'video'}) : f))
      const skipped = picked.tempFiles.length - kept.length
      if (skipped) this.setData({notice: `${skipped} 个文件不是照片或视频，没有备份。`})
      return kept.length ? this.uploader.add(kept, {source: 'chat'}) : []
    },
    // A photo a restart lost (its temp file is gone): pick it again, shown its thumbnail.
    async repick(e) {
      const item = this.uploader.items.find(i => i.key === e.currentTarget.dataset.key)
      if (!item || item.state !== 'missing') return false
      const picked = await this.pick(wx.chooseMedia, {count: 1, mediaType: [item.kind === 'video' ? 'video' : 'image'],
        sourceType: ['album'], sizeType: ['original']}, item.kind === 'video' ? '选择视频' : '选择照片')
      if (!picked) return false
      const same = await this.uploader.repick(item, picked.tempFiles[0])
      if (!same) {
        this.setData({notice: item.kind === 'video' ? '这不是原来那段视频，已作为新视频备份；原来那段仍在等你重新选择。'
          : '这不是原来那张照片，已作为新照片备份；原来那张仍在等你重新选择。'})
      }
      return same
    },
    retry() {
      return this.uploader.retryFailed()
    },
    goSettings() {
      wx.switchTab({url: '/pages/settings/settings'})
    },
  },
})
