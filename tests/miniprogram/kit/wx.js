// A `wx` for tests that behaves like a phone: every API the pages use, over real HTTP
// (node:http), a real WebSocket (ws) and real files, with WeChat's rules where they
// bite — the URL policy (kit/phone.js), no PATCH, uploadFile succeeding on any status,
// 10 requests and 5 sockets at most, the background (suspension after 5 s, sockets
// closed after ~10 s, callbacks held until the return), the privacy agreement
// (errno 104), the storage and file budgets (kit/files.js), callbacks always
// asynchronous. UI calls answer from `kit.ui` and are logged in `kit.log`.
// docs/miniprogram.md lists where the kit still differs from a phone.
const fs = require('fs')
const path = require('path')
const {makePhone, refusal} = require('./phone')
const {makeFiles, LIMITS} = require('./files')
const {makeNet, METHODS, OFFLINE} = require('./net')
const {makeImages} = require('./images')
const {makeMedia} = require('./media')

const MINIPROGRAM = path.resolve(__dirname, '../../../miniprogram')
const MAX_TASKS = 10
const MAX_SOCKETS = 5
// APIs behind the privacy agreement, and what the agreement must declare for them.
const PRIVATE = {
  chooseMedia: '选中的照片或视频信息',
  chooseMessageFile: '选中的文件',
  saveImageToPhotosAlbum: '相册（仅写入）权限',
  saveVideoToPhotosAlbum: '相册（仅写入）权限',
  authorize: '相册（仅写入）权限',
}
// jsdom has no setImmediate; a zero timeout is just as asynchronous.
const soon = fn => setTimeout(fn, 0)

// phone: {ip, netmask, domains} (kit/phone.js); suspendAfter / socketsCloseAfter: ms
// after kit.background() (WeChat: ~5 s and ~10 s; tests pass less).
function createKit({tmpDir, phone = {}, suspendAfter = 5000, socketsCloseAfter = 10000} = {}) {
  const live = new Set() // network work in flight: {kind, abort(reason)}
  // Requests in flight that carry a photo's bytes: a multipart POST, or a tus chunk
  // (a POST overriding to PATCH: WeChat has no PATCH).
  const uploads = () => Array.from(live).filter(w => w.kind === 'task' && w.method === 'POST' &&
    /\/api\/v1\/(images|uploads\/[^/?]+)$/.test(w.url))
  let online = true
  let state = 'front' // front | background | suspended
  let held = [] // callbacks WeChat delivers only once back in front
  let timers = []
  const kit = {
    log: [],
    media: [], // what the next chooseMedia offers: [{path, width, height}], videos as makeVideos gives them
    chatFiles: [], // what the next chooseMessageFile returns: [{path, name, time}]
    wechat: null, // a WeChat stand-in (kit/wechat.js) that wx.login asks for codes
    phone: makePhone(phone),
    limits: Object.assign({}, LIMITS),
    python: require('./server').PYTHON,
    sent: 0, // HTTP requests and socket connections actually opened
    received: 0, // bytes of HTTP response bodies received (requests, downloads, <image>)
    rewriteAnswer: null, // (url, text) -> text: a wx.request answer or socket message as an older server gives it
    app: null, // what app.js passed to App()
    privacy: {
      declared: new Set(Object.keys(PRIVATE)), // drop one to act as an incomplete agreement
      agreed: false,
      listener: null, // wx.onNeedPrivacyAuthorization's
      tapped: new Set(), // ids of agreePrivacyAuthorization buttons the person tapped
    },
    ui: {
      openid: 'o-kit-user', // whom wx.login signs in as
      uploadTaskProgress: true, // false: UploadTask.onProgressUpdate never fires
      scanResult: null,
      actionSheet: 0, // tapIndex to answer, or null to cancel
      modalConfirm: true,
      authorize: true, // what the person answers to wx.authorize
      authSetting: {},
      privacy: 'agree', // the answer to WeChat's own privacy popup (no listener registered)
      stripExif: false, // chooseMedia hands over copies without EXIF
    },
    storage: new Map(),
    screenOn: false,
    get online() {
      return online
    },
    get state() {
      return state
    },
    // Cut the network: new calls fail, calls in flight fail now (as on a train).
    setOnline(value) {
      online = value
      if (!value) Array.from(live).forEach(work => work.abort(OFFLINE))
    },
    beforeRequest: null, // a test's hook, e.g. to cut the network at the third chunk
    uplink: null, // bytes per second each request body leaves at (a phone's uplink), or no limit
    lastCall(name) {
      return kit.log.filter(e => e.api === name).pop()
    },
    inFlight: () => Array.from(live).filter(w => w.kind === 'task').length,
    uploadsInFlight: () => uploads().length,
    // Uploads still sending their bytes (not yet waiting for the answer).
    uploadsSending: () => uploads().filter(w => w.sending).length,
    openSockets: () => Array.from(live).filter(w => w.kind === 'socket').length,
  }

  // success/fail/complete the way WeChat calls them: never synchronously, and not
  // while suspended (held until the return to the front).
  // What was already on its way when the thread stopped (scheduled before, or by a
  // callback that was itself on its way) still runs: the thread finishes its turn.
  // The thread stops only once what is on its way has run, however late the timers
  // fire on a busy machine: `stopping` holds new deliveries, `onTheirWay` counts the rest.
  let running = 0
  let stopping = false
  let onTheirWay = 0
  let stopped = null // called once nothing is on its way any more
  const halted = () => stopping || state === 'suspended'
  function deliver(fn) {
    const onItsWay = !halted() || running > 0
    if (onItsWay) onTheirWay += 1
    soon(() => {
      if (!onItsWay && halted()) return held.push(fn)
      running += 1
      try {
        fn()
      } finally {
        running -= 1
        if (onItsWay) onTheirWay -= 1
        if (onTheirWay === 0 && stopped) stopped()
      }
    })
  }
  function settle(options, error, result) {
    deliver(() => {
      if (error) options.fail && options.fail(error)
      else options.success && options.success(result)
      options.complete && options.complete(error || result)
    })
  }

  const files = makeFiles(kit, {tmpDir, settle})
  const images = makeImages(kit)
  kit.images = images

  // --- the background ----------------------------------------------------------------
  // The person leaves (home button, lock): onHide now, the JS thread suspended after
  // `suspendAfter` (calls in flight fail `interrupted` just before), sockets closed
  // after `socketsCloseAfter` (told on the return). Resolves once suspended.
  kit.background = () => {
    if (state !== 'front') return Promise.resolve()
    state = 'background'
    kit.log.push({api: '(background)'})
    if (kit.app && kit.app.onHide) kit.app.onHide()
    return new Promise(resolve => {
      timers.push(setTimeout(() => {
        // "fail interrupted" is the last thing delivered; then the JS thread stops.
        Array.from(live).filter(w => w.kind === 'task').forEach(w => w.abort('interrupted'))
        stopping = true
        stopped = () => {
          stopped = null
          stopping = false
          state = 'suspended'
          resolve()
        }
        if (onTheirWay === 0) stopped()
      }, suspendAfter))
      timers.push(setTimeout(() => {
        Array.from(live).filter(w => w.kind === 'socket').forEach(w => w.abort('interrupted'))
      }, socketsCloseAfter))
    })
  }
  // Back in front: onShow, then what WeChat held while suspended.
  kit.foreground = () => {
    timers.forEach(clearTimeout)
    timers = []
    stopping = false
    stopped = null
    if (state === 'front') return
    state = 'front'
    kit.log.push({api: '(foreground)'})
    if (kit.app && kit.app.onShow) kit.app.onShow({})
    const queue = held
    held = []
    queue.forEach(fn => soon(fn))
  }
  // App() from app.js, launched the way WeChat does: onLaunch, then onShow.
  kit.launch = appPath => {
    global.App = definition => { kit.app = definition }
    global.getApp = () => kit.app
    kit.app = null
    delete require.cache[require.resolve(appPath)] // a second launch runs app.js again
    require(appPath)
    if (!kit.app) throw new Error(`${appPath} did not call App()`)
    if (kit.app.onLaunch) kit.app.onLaunch({})
    if (kit.app.onShow) kit.app.onShow({})
    return kit.app
  }
  // The mini-program killed and started again: nothing in flight survives, temp
  // files are gone; storage and the user data folder stay.
  kit.restart = () => {
    timers.forEach(clearTimeout)
    timers = []
    stopping = false
    stopped = null
    held = []
    state = 'front'
    Array.from(live).forEach(work => work.abort('abort', {silent: true}))
    files.clearTemp()
    kit.privacy.listener = null
    kit.privacy.tapped.clear()
    kit.app = null
    kit.log.push({api: '(restart)'})
  }
  // The person taps the page's <button open-type="agreePrivacyAuthorization">.
  // miniprogram-simulate dispatches no events on <button> and drops its id, so the
  // kit reads the button from the page's WXML (which must have one, with an id and a
  // bindagreeprivacyauthorization handler), records the tap WeChat checks, and calls
  // the handler — only while the button is rendered.
  kit.tapPrivacyAgree = (page, route) => {
    const wxml = fs.readFileSync(path.join(MINIPROGRAM, `${route}.wxml`), 'utf8')
    const button = (wxml.match(/<button\b[^>]*>/g) || []).find(tag => /open-type="agreePrivacyAuthorization"/.test(tag))
    if (!button) throw new Error(`${route}.wxml has no agreePrivacyAuthorization button`)
    const id = (/\bid="([^"]+)"/.exec(button) || [])[1]
    const handler = (/bindagreeprivacyauthorization="([^"]+)"/.exec(button) || [])[1]
    if (!id || !handler) throw new Error(`the agree button in ${route}.wxml needs an id and a handler`)
    const cls = (/class="[^"]*\b(privacy__\w+)/.exec(button) || [])[1]
    if (cls && !page.querySelector(`.${cls}`)) throw new Error('the agree button is not on screen')
    kit.privacy.tapped.add(id)
    page.instance[handler]({type: 'agreeprivacyauthorization', target: {id}, currentTarget: {id}, detail: {}})
  }

  // --- the network -------------------------------------------------------------------
  // Why WeChat would fail this call before sending anything, or null.
  function refused(api, url) {
    if (state === 'suspended') return 'interrupted'
    const reason = refusal(kit.phone, api, url)
    if (reason) return reason
    if (api === 'socket') return kit.openSockets() >= MAX_SOCKETS ? 'exceed max socket count' : null
    return kit.inFlight() >= MAX_TASKS ? 'exceed max task count' : null
  }

  // The privacy agreement: WeChat holds the call, asks (the mini-program's listener,
  // or its own popup), then runs it or fails it with errno 104.
  function gated(api, options, run) {
    if (!kit.privacy.declared.has(api)) {
      return settle(options, {errMsg: `${api}:fail api scope is not declared in the privacy agreement`, errno: 112})
    }
    if (kit.privacy.agreed) return run()
    const refuse = () => settle(options, {errMsg: `${api}:fail privacy permission is not authorized`, errno: 104})
    if (!kit.privacy.listener) {
      kit.log.push({api: '(privacy popup)', referrer: api})
      if (kit.ui.privacy !== 'agree') return refuse()
      kit.privacy.agreed = true
      return run()
    }
    let answered = false
    const resolve = ({event, buttonId} = {}) => {
      if (event === 'exposureAuthorization' || answered) return
      answered = true
      kit.log.push({api: '(privacy answer)', event, buttonId})
      // WeChat checks that the agree button was really tapped.
      if (event === 'agree' && kit.privacy.tapped.has(buttonId)) {
        kit.privacy.agreed = true
        run()
      } else {
        refuse()
      }
    }
    deliver(() => kit.privacy.listener(resolve, {referrer: api}))
  }

  const videos = makeMedia(kit, {settle, gated})
  kit.videos = videos

  const wx = Object.assign({}, files.storage, {
    ...makeNet({kit, live, settle, deliver, refused, files, isOnline: () => online}),
    // files ---------------------------------------------------------------------------
    getFileSystemManager: () => files.manager,
    chooseMedia: options => gated('chooseMedia', options, () => files.media.chooseMedia(options)),
    chooseMessageFile: options => gated('chooseMessageFile', options, () => files.media.chooseMessageFile(options)),
    compressImage: options => files.media.compressImage(options),
    previewMedia: options => videos.previewMedia(options),
    saveVideoToPhotosAlbum: options => videos.saveVideoToPhotosAlbum(options),

    saveImageToPhotosAlbum(options) {
      kit.log.push({api: 'saveImageToPhotosAlbum', filePath: options.filePath})
      gated('saveImageToPhotosAlbum', options, () => {
        if (kit.ui.authSetting['scope.writePhotosAlbum'] === false) {
          return settle(options, {errMsg: 'saveImageToPhotosAlbum:fail auth deny'})
        }
        if (!fs.existsSync(options.filePath)) return settle(options, {errMsg: 'saveImageToPhotosAlbum:fail file not found'})
        kit.album.push(fs.readFileSync(options.filePath))
        settle(options, null, {errMsg: 'saveImageToPhotosAlbum:ok'})
      })
    },
    getSetting: options => settle(options, null, {authSetting: Object.assign({}, kit.ui.authSetting)}),
    authorize(options) {
      kit.log.push({api: 'authorize', scope: options.scope})
      gated('authorize', options, () => {
        kit.ui.authSetting[options.scope] = kit.ui.authorize
        settle(options, kit.ui.authorize ? null : {errMsg: 'authorize:fail auth deny'}, {errMsg: 'authorize:ok'})
      })
    },
    openSetting: options => { kit.log.push({api: 'openSetting'}); settle(options || {}, null, {authSetting: kit.ui.authSetting}) },
    onNeedPrivacyAuthorization(listener) {
      kit.privacy.listener = listener
    },
    getPrivacySetting: options => settle(options, null, {needAuthorization: !kit.privacy.agreed,
      privacyContractName: '《图备隐私保护指引》'}),
    openPrivacyContract: options => { kit.log.push({api: 'openPrivacyContract'}); settle(options || {}, null, {}) },
    setKeepScreenOn(options) {
      kit.screenOn = Boolean(options.keepScreenOn)
      kit.log.push({api: 'setKeepScreenOn', keepScreenOn: kit.screenOn})
      settle(options, null, {errMsg: 'setKeepScreenOn:ok'})
    },

    // a one-time code from the WeChat stand-in (kit.wechat), as the WeChat client
    // gets one from WeChat; without one, a code no server accepts (as in DevTools
    // with touristappid)
    login(options) {
      kit.log.push({api: 'login'})
      const code = kit.wechat ? kit.wechat.issue(kit.ui.openid) : `sim-${Date.now()}`
      settle(options, null, {code, errMsg: 'login:ok'})
    },

    // ui --------------------------------------------------------------------------------
    scanCode(options) {
      kit.log.push({api: 'scanCode'})
      if (kit.ui.scanResult === null) return settle(options, {errMsg: 'scanCode:fail cancel'})
      settle(options, null, {result: kit.ui.scanResult, scanType: 'QR_CODE', errMsg: 'scanCode:ok'})
    },
    showActionSheet(options) {
      kit.log.push({api: 'showActionSheet', itemList: options.itemList})
      if (kit.ui.actionSheet === null) return settle(options, {errMsg: 'showActionSheet:fail cancel'})
      settle(options, null, {tapIndex: kit.ui.actionSheet})
    },
    showModal(options) {
      kit.log.push({api: 'showModal', title: options.title, content: options.content})
      settle(options, null, {confirm: kit.ui.modalConfirm, cancel: !kit.ui.modalConfirm})
    },
    // The preview opens on `current` (loaded as <image> would: no header); `shown`
    // says whether the person sees it or a broken image.
    previewImage(options) {
      const entry = {api: 'previewImage', current: options.current, urls: options.urls, shown: null}
      kit.log.push(entry)
      images.load(options.current || (options.urls || [])[0]).then(result => {
        entry.shown = result.ok
        entry.status = result.status
        settle(options, null, {})
      })
    },
    showToast(options) { kit.log.push({api: 'showToast', title: options.title}); settle(options, null, {}) },
    showLoading(options) { kit.log.push({api: 'showLoading', title: options.title}); settle(options, null, {}) },
    hideLoading(options) { settle(options || {}, null, {}) },
    stopPullDownRefresh(options) { kit.log.push({api: 'stopPullDownRefresh'}); settle(options || {}, null, {}) },
    switchTab(options) { kit.log.push({api: 'switchTab', url: options.url}); settle(options, null, {}) },
    navigateTo(options) { kit.log.push({api: 'navigateTo', url: options.url}); settle(options, null, {}) },
    getDeviceInfo: () => ({brand: 'devtools', model: 'kit phone', platform: 'devtools'}),
    getSystemInfoSync: () => ({brand: 'devtools', model: 'kit phone', SDKVersion: '3.7.12'}),
    env: {USER_DATA_PATH: files.userDir},
  })
  kit.wx = wx
  kit.files = files
  kit.sockets = []
  kit.album = []
  kit.videoAlbum = [] // what saveVideoToPhotosAlbum saved: [{sha256, size}]
  kit.digests = ['md5', 'sha1', 'sha256'] // drop sha256 to act as an old base library
  return kit
}

module.exports = {createKit, METHODS, MAX_TASKS, MAX_SOCKETS}
