// Backup: choose photos, watch each one go up, retry the failed with one tap.
// The uploader does the work; this page renders its items.
const api = require('../../utils/request')
const events = require('../../utils/events')
const {Uploader} = require('../../utils/uploader')

function summaryText({done, exists, failed}) {
  const parts = []
  if (done) parts.push(`${done} 张已备份`)
  if (exists) parts.push(`${exists} 张已存在`)
  if (failed) parts.push(`${failed} 张失败`)
  return parts.join(' · ')
}

Component({
  data: {
    paired: false,
    items: [],
    summary: '',
    failed: 0,
    active: 0,
  },
  methods: {
    onLoad() {
      this.uploader = new Uploader({onChange: items => this.render(items)})
      if (api.isPaired()) {
        events.connect()
        this.uploader.resumePending()
      }
    },
    onShow() {
      this.setData({paired: api.isPaired()})
    },
    onUnload() {
      if (this.uploader) this.uploader.destroy()
    },
    render(items) {
      const counts = this.uploader.summary()
      this.setData({
        items: items.map(({key, thumb, state, stateText, progress, error}) =>
          ({key, thumb, state, stateText, progress, error})),
        summary: summaryText(counts),
        failed: counts.failed,
        active: counts.active,
      })
    },
    choose() {
      if (!api.isPaired()) {
        wx.switchTab({url: '/pages/settings/settings'})
        return Promise.resolve([])
      }
      return new Promise(resolve => {
        wx.chooseMedia({
          count: 20,
          mediaType: ['image'],
          sourceType: ['album', 'camera'],
          sizeType: ['original'],
          success: ({tempFiles}) => resolve(this.uploader.add(tempFiles)),
          fail: () => resolve([]), // the person cancelled
        })
      })
    },
    retry() {
      return this.uploader.retryFailed()
    },
    goSettings() {
      wx.switchTab({url: '/pages/settings/settings'})
    },
  },
})
