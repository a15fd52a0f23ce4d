// Settings: which server, and pairing this phone with it (scan the QR code that
// `python -m server pair` shows, or type address and code), or signing in with
// WeChat when the server has a mini-program AppID configured. Once paired, it makes
// the pairing code that signs a computer's browser in to the web app as this user.
const api = require('../../utils/request')
const events = require('../../utils/events')

// tubei://pair?server=http%3A%2F%2F192.168.1.5%3A8000&code=123456
function parsePairLink(text) {
  const match = /^tubei:\/\/pair\?(.*)$/.exec(String(text || '').trim())
  if (!match) return null
  const params = {}
  match[1].split('&').forEach(pair => {
    const [key, value = ''] = pair.split('=')
    params[decodeURIComponent(key)] = decodeURIComponent(value.replace(/\+/g, ' '))
  })
  return params.server && params.code ? {server: params.server, code: params.code} : null
}

Component({
  data: {
    server: '',
    code: '',
    status: 'unpaired', // unpaired | checking | paired | unreachable
    busy: false,
    error: '',
    wechat: false, // the server offers WeChat login
    help: false, // the connection guide is open
    browser: null, // {code, until, address}: a code for signing a browser in
    browserBusy: false,
    browserError: '',
  },
  methods: {
    onLoad() {
      this.setData({server: api.serverUrl()})
      return this.checkMethods()
    },
    // Which logins the typed (or stored) server offers; quietly none when unknown.
    async checkMethods() {
      const server = api.normalizeServer(this.data.server)
      if (!server) return this.setData({wechat: false})
      try {
        const methods = await api.request({path: `${server}/api/v1/auth/methods`})
        if (api.normalizeServer(this.data.server) === server) this.setData({wechat: !!methods.wechat})
      } catch (error) {
        this.setData({wechat: false})
      }
    },
    onShow() {
      return this.refresh()
    },
    async refresh() {
      if (!api.isPaired()) {
        this.setData({status: 'unpaired'})
        return
      }
      this.setData({status: 'checking', server: api.serverUrl()})
      try {
        await api.request({path: '/api/v1/images?limit=1'})
        this.setData({status: 'paired', error: ''})
      } catch (error) {
        if (error.code === 'unauthorized') {
          api.setToken('')
          this.setData({status: 'unpaired', error: error.message})
        } else {
          this.setData({status: 'unreachable', error: error.message, help: error.code === 'domain'})
        }
      }
    },
    onServerInput(e) {
      this.setData({server: e.detail.value})
    },
    onServerBlur() {
      return this.checkMethods()
    },
    onCodeInput(e) {
      this.setData({code: e.detail.value})
    },
    scan() {
      wx.scanCode({
        onlyFromCamera: false,
        scanType: ['qrCode'],
        success: ({result}) => {
          const link = parsePairLink(result)
          if (!link) {
            this.setData({error: '这不是图备的配对二维码'})
            return
          }
          this.setData({server: link.server, code: link.code})
          this.pair()
        },
      })
    },
    async pair() {
      const {url: server, error: bad} = api.parseServer(this.data.server)
      const code = String(this.data.code || '').trim()
      if (bad) return this.setData({error: bad})
      if (!/^\d{6}$/.test(code)) return this.setData({error: '配对码是 6 位数字'})
      this.setData({busy: true, error: ''})
      api.setServer(server)
      api.setToken('')
      try {
        const answer = await api.request({
          path: '/api/v1/auth/pair',
          method: 'POST',
          data: {code, device: deviceName()},
        })
        api.setToken(answer.token)
        events.reconnect()
        this.setData({status: 'paired', server, code: '', busy: false})
        wx.showToast({title: '配对成功', icon: 'success'})
      } catch (error) {
        // status 0: the server was never reached (WeChat's cause is in the message).
        const status = error.status === 0 ? 'unreachable' : 'unpaired'
        this.setData({status, busy: false, error: error.message, help: error.code === 'domain'})
      }
    },
    // wx.login's one-time code, exchanged by the server with WeChat for this user's
    // openid; the session key never reaches the phone.
    async loginWechat() {
      const {url: server, error: bad} = api.parseServer(this.data.server)
      if (bad) return this.setData({error: bad})
      this.setData({busy: true, error: ''})
      try {
        const {code} = await new Promise((resolve, reject) => wx.login({success: resolve, fail: reject}))
        api.setServer(server)
        api.setToken('')
        const answer = await api.request({
          path: '/api/v1/auth/wechat',
          method: 'POST',
          data: {code, device: deviceName()},
        })
        api.setToken(answer.token)
        events.reconnect()
        this.setData({status: 'paired', server, busy: false})
        wx.showToast({title: '登录成功', icon: 'success'})
      } catch (error) {
        const status = error.status === 0 ? 'unreachable' : 'unpaired'
        this.setData({status, busy: false, error: error.message || '微信登录失败', help: error.code === 'domain'})
      }
    },
    // A one-time code for this user (POST /api/v1/auth/pairing-codes) and the address a
    // browser opens: the web app at the server address this phone uses.
    async signInBrowser() {
      this.setData({browserBusy: true, browserError: ''})
      try {
        const answer = await api.request({path: '/api/v1/auth/pairing-codes', method: 'POST', data: {}})
        this.setData({
          browser: {code: answer.code, until: clock(answer.expires_at), address: `${api.serverUrl()}/`},
          browserBusy: false,
        })
      } catch (error) {
        this.setData({browserBusy: false, browserError: error.message})
      }
    },
    closeBrowser() {
      this.setData({browser: null, browserError: ''})
    },
    unpair() {
      api.setToken('')
      events.close()
      this.setData({status: 'unpaired', error: '', browser: null})
    },
    toggleHelp() {
      this.setData({help: !this.data.help})
    },
    openTrash() {
      wx.navigateTo({url: '/pages/trash/trash'})
    },
  },
})

// "14:05" for an ISO time, in the phone's time zone.
function clock(iso) {
  const date = new Date(iso)
  const pad = n => String(n).padStart(2, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`
}

function deviceName() {
  try {
    const info = wx.getDeviceInfo ? wx.getDeviceInfo() : wx.getSystemInfoSync()
    return [info.brand, info.model].filter(Boolean).join(' ') || '微信小程序'
  } catch (e) {
    return '微信小程序'
  }
}

module.exports = {parsePairLink}
