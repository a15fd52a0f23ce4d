// The one events socket: the server pushes upload progress and library changes
// here. WeChat allows 5 sockets per mini-program, so every page shares this one;
// listeners outlive reconnects, so pages subscribe once.
const api = require('./request')
const lifecycle = require('./lifecycle')

const MIN_DELAY = 1000
const MAX_DELAY = 30000

const listeners = {}
let task = null
let open = false
let wanted = false
let delay = MIN_DELAY
let timer = null
let shownAt = 0

function socketUrl() {
  const base = api.serverUrl().replace(/^http/i, 'ws')
  return `${base}/api/v1/events?token=${encodeURIComponent(api.token())}`
}

function emit(type, event) {
  ;(listeners[type] || []).slice().forEach(fn => fn(event))
  ;(listeners['*'] || []).slice().forEach(fn => fn(event))
}

// on('upload.progress', fn) -> off(); '*' hears everything, 'open'/'close' the socket.
function on(type, fn) {
  ;(listeners[type] = listeners[type] || []).push(fn)
  return () => {
    listeners[type] = (listeners[type] || []).filter(f => f !== fn)
  }
}

function connect() {
  wanted = true
  if (task || !api.isPaired()) return
  clearTimeout(timer)
  timer = null
  const socket = wx.connectSocket({url: socketUrl()})
  task = socket
  socket.onOpen(() => {
    open = true
    delay = MIN_DELAY
    emit('open', {type: 'open'})
  })
  socket.onMessage(({data}) => {
    let event
    try {
      event = JSON.parse(data)
    } catch (e) {
      return
    }
    if (event && event.type) emit(event.type, event)
  })
  const lost = res => {
    if (task !== socket) return
    task = null
    const wasOpen = open
    open = false
    if (wasOpen) emit('close', {type: 'close', code: res && res.code})
    // 4401: the token was refused; 4403: this device was revoked. Reconnecting
    // would only be refused again.
    if (res && (res.code === 4401 || res.code === 4403)) {
      wanted = false
      return
    }
    if (!wanted) return
    // Closed by WeChat while we were away, and only told now that we are back.
    if (Date.now() - shownAt < 2000) connect()
    else scheduleReconnect()
  }
  socket.onClose(lost)
  socket.onError(lost)
}

function scheduleReconnect() {
  if (timer || lifecycle.isHidden()) return // the return to the front reconnects
  timer = setTimeout(() => {
    timer = null
    connect()
  }, delay)
  delay = Math.min(delay * 2, MAX_DELAY)
}

function close() {
  wanted = false
  clearTimeout(timer)
  timer = null
  const socket = task
  task = null
  open = false
  if (socket) socket.close({code: 1000})
}

// After pairing anew, the old socket carries the old token.
function reconnect() {
  close()
  delay = MIN_DELAY
  connect()
}

function isOpen() {
  return open
}

// WeChat closes sockets within ~10 s of the background; back in front, reconnect at
// once rather than waiting out a backoff that grew while suspended.
lifecycle.on('show', () => {
  shownAt = Date.now()
  if (!wanted || task) return
  clearTimeout(timer)
  timer = null
  delay = MIN_DELAY
  connect()
})

module.exports = {on, connect, close, reconnect, isOpen, MIN_DELAY, MAX_DELAY}
