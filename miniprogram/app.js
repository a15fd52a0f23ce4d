// Network and protocol code lives in utils/. The app starts the event socket once
// paired, reports going to the background and back (utils/lifecycle.js: paused
// uploads resume, the socket reconnects), and routes WeChat's privacy question to the
// page in front (utils/privacy.js).
const api = require('./utils/request')
const events = require('./utils/events')
const lifecycle = require('./utils/lifecycle')
const privacy = require('./utils/privacy')

App({
  onLaunch() {
    privacy.listen()
    if (api.isPaired()) events.connect()
  },
  onShow() {
    lifecycle.shown()
  },
  onHide() {
    lifecycle.hid()
  },
})
