// WeChat's privacy agreement, asked on the page the person is on. When an API that
// needs it (chooseMedia, chooseMessageFile, saveImage/VideoToPhotosAlbum) is called before
// the person agreed, WeChat holds the call and fires onNeedPrivacyAuthorization; the
// page shows its agreement with a <button open-type="agreePrivacyAuthorization">, and
// the call goes on (agree) or fails with errno 104 (disagree).
let pending = null // {resolve, referrer}
let presenter = null // the page showing the agreement: {showPrivacy(referrer), hidePrivacy()}

function listen() {
  if (!wx.onNeedPrivacyAuthorization) return false // base library before 2.32.3
  wx.onNeedPrivacyAuthorization((resolve, eventInfo) => {
    if (pending) pending.resolve({event: 'disagree'}) // one question at a time
    pending = {resolve, referrer: (eventInfo && eventInfo.referrer) || ''}
    if (presenter) {
      presenter.showPrivacy(pending.referrer)
      resolve({event: 'exposureAuthorization'})
    } else {
      // No page to ask on (should not happen): refuse rather than hang the call.
      answer('disagree')
    }
  })
  return true
}

// A page that can show the agreement registers while it is in front.
function present(page) {
  presenter = page
  if (pending) page.showPrivacy(pending.referrer)
}

function withdraw(page) {
  if (presenter === page) presenter = null
}

// buttonId: the id of the agree button, which WeChat checks was tapped.
function answer(event, buttonId) {
  const waiting = pending
  pending = null
  if (presenter) presenter.hidePrivacy()
  if (!waiting) return false
  waiting.resolve(event === 'agree' ? {event: 'agree', buttonId} : {event: 'disagree'})
  return true
}

// What each API is for, shown in the agreement (and listed in the README).
const PURPOSES = {
  chooseMedia: '选择要备份的照片和视频',
  chooseMessageFile: '选择聊天里的原图文件来备份',
  saveImageToPhotosAlbum: '把原图保存回手机相册',
  saveVideoToPhotosAlbum: '把视频保存回手机相册',
  authorize: '把原图保存回手机相册', // wx.authorize({scope: 'scope.writePhotosAlbum'})
}

function purpose(referrer) {
  return PURPOSES[referrer] || '备份和保存你的照片'
}

// The methods a page that shows the agreement needs: `methods: {...privacy.pageMethods, ...}`.
const pageMethods = {
  showPrivacy(referrer) {
    this.setData({privacy: {purpose: purpose(referrer)}})
  },
  hidePrivacy() {
    this.setData({privacy: null})
  },
  onAgreePrivacy() {
    answer('agree', 'agree-privacy')
  },
  onDisagreePrivacy() {
    answer('disagree')
  },
  openPrivacyContract() {
    if (wx.openPrivacyContract) wx.openPrivacyContract({})
  },
}

module.exports = {listen, present, withdraw, answer, purpose, pageMethods}
