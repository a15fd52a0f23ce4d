// Saving to the phone's album from a page: a photo's original, or a video (the file
// utils/video.js saveSource picks), downloaded with the token and handed to
// saveImage/VideoToPhotosAlbum. The album permission is asked once; a refusal, or the
// privacy agreement refused, is explained in Chinese. The page shows the download's
// progress from its `saving` (-1 when none) and `savingText`.
const api = require('./request')
const {kind} = require('./wxerror')
const video = require('./video')

const PRIVACY_REFUSED = '没有同意隐私保护指引，无法保存到相册；再试一次可重新查看'

// The methods a page that saves needs: `methods: {...album.pageMethods, ...}`, for
// cells built as the gallery builds them ({id, damaged, video, urls, facts}).
const pageMethods = {
  async save(image) {
    if (image.damaged) {
      wx.showToast({title: api.messageFor('image_damaged'), icon: 'none'})
      return false
    }
    if (image.video) return this.saveVideo(image)
    if (!(await ensureAlbumPermission())) return false
    this.setData({saving: 0, savingText: '正在下载原图'})
    try {
      const path = await api.download({
        path: image.urls.original,
        header: {'X-Download-Id': `save-${image.id.slice(0, 12)}-${Date.now()}`},
        onProgress: ({progress}) => this.setData({saving: progress}),
      })
      await promisify(wx.saveImageToPhotosAlbum, {filePath: path})
      this.setData({saving: -1})
      wx.showToast({title: '已保存到相册', icon: 'success'})
      return true
    } catch (error) {
      this.setData({saving: -1})
      saveFailed(error)
      return false
    }
  },
  // The original when the album takes it (mp4, or a MOV under an .mp4 name, within
  // downloadFile's 200 MB), else a preview video if the server has one — and then
  // the person is told only a preview was saved — else why nothing can be.
  async saveVideo(image) {
    const source = video.saveSource(image.facts)
    if (source.why) {
      wx.showModal({title: '无法保存到相册', content: source.why, showCancel: false})
      return false
    }
    if (!(await ensureAlbumPermission())) return false
    this.setData({saving: 0, savingText: source.preview ? '正在下载预览视频' : '正在下载视频'})
    // A MOV is kept under an .mp4 name (the album takes mp4) in the user data folder.
    const named = image.facts.mime === 'video/mp4' && !source.preview ? ''
      : `${wx.env.USER_DATA_PATH}/save-${image.id.slice(0, 12)}.mp4`
    let path = ''
    try {
      path = await api.download({
        path: source.path,
        filePath: named || undefined,
        header: {'X-Download-Id': `save-${image.id.slice(0, 12)}-${Date.now()}`},
        onProgress: ({progress}) => this.setData({saving: progress}),
      })
      await promisify(wx.saveVideoToPhotosAlbum, {filePath: path})
      this.setData({saving: -1})
      if (source.preview) {
        wx.showModal({title: '已保存预览版本', showCancel: false,
          content: '手机相册收不下原文件，存入的是服务器转好的预览版本（画质较低）；原文件完整保存在服务器上。'})
      } else {
        wx.showToast({title: '已保存到相册', icon: 'success'})
      }
      return true
    } catch (error) {
      this.setData({saving: -1})
      saveFailed(error)
      return false
    } finally {
      if (named) removeQuietly(named)
    }
  },
}

function removeQuietly(path) {
  try {
    wx.getFileSystemManager().unlinkSync(path)
  } catch (e) {
    // never written
  }
}

function promisify(fn, options) {
  return new Promise((resolve, reject) => fn(Object.assign({}, options, {success: resolve, fail: reject})))
}

// Ask once; after a refusal WeChat will not ask again, so explain and offer settings.
async function ensureAlbumPermission() {
  const setting = await promisify(wx.getSetting, {})
  const granted = setting.authSetting['scope.writePhotosAlbum']
  if (granted) return true
  if (granted === undefined) {
    try {
      await promisify(wx.authorize, {scope: 'scope.writePhotosAlbum'})
      return true
    } catch (e) {
      // The privacy agreement refused is not for the settings page: say so.
      if (kind(e) === 'privacy') {
        wx.showToast({title: PRIVACY_REFUSED, icon: 'none'})
        return false
      }
    }
  }
  explainAlbumRefusal()
  return false
}

// What a failed save to the album tells the person (a photo's or a video's).
function saveFailed(error) {
  const why = kind(error)
  // A privacy refusal is not a settings matter: 去设置 could not change it.
  if (why === 'privacy') wx.showToast({title: PRIVACY_REFUSED, icon: 'none'})
  else if (why === 'denied') explainAlbumRefusal()
  else wx.showToast({title: error.message || error.errMsg || '保存失败', icon: 'none'})
}

function explainAlbumRefusal() {
  wx.showModal({
    title: '无法保存到相册',
    content: '图备需要“保存到相册”的权限才能把原图存回手机。可以在设置中打开。',
    confirmText: '去设置',
    success: ({confirm}) => confirm && wx.openSetting(),
  })
}

module.exports = {pageMethods}
