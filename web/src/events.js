// One shared WebSocket to /api/v1/events for every subscriber, opened while anyone
// listens and a session exists. It reconnects with backoff (1 s doubling to 30 s);
// after a reconnect, or on the server's own `resync`, subscribers get {type: 'resync'}
// and reload what they show, since events may have been missed meanwhile.
// Closed with 4401/4403 (bad token, device signed out) it does not reconnect: it tells
// subscribers {type: 'signed_out'} and clears the session, so the app shows sign-in.
import {clearToken, getToken, onSessionChange} from './session.js'

const CLOSE_UNAUTHORIZED = 4401
const CLOSE_REVOKED = 4403
const handlers = new Set()
let socket = null
let retryTimer = null
let attempts = 0
let openedBefore = false

function emit(event) {
  for (const handler of [...handlers]) {
    try {
      handler(event)
    } catch (error) {
      setTimeout(() => { throw error })
    }
  }
}

function url(token) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${scheme}//${location.host}/api/v1/events?token=${encodeURIComponent(token)}`
}

function connect() {
  clearTimeout(retryTimer)
  retryTimer = null
  const token = getToken()
  if (socket || !token || !handlers.size) return
  const ws = new WebSocket(url(token))
  socket = ws
  ws.onopen = () => {
    attempts = 0
    if (openedBefore) emit({type: 'resync'})
    openedBefore = true
  }
  ws.onmessage = message => {
    let event
    try {
      event = JSON.parse(message.data)
    } catch (e) {
      return
    }
    if (event && typeof event.type === 'string') emit(event)
  }
  ws.onclose = close => {
    if (socket !== ws) return
    socket = null
    if (close.code === CLOSE_UNAUTHORIZED || close.code === CLOSE_REVOKED) {
      emit({type: 'signed_out', code: close.code})
      if (getToken() === token) clearToken()
      return
    }
    if (!handlers.size || !getToken()) return
    const delay = Math.min(30000, 1000 * 2 ** attempts)
    attempts += 1
    retryTimer = setTimeout(connect, delay)
  }
}

function disconnect() {
  clearTimeout(retryTimer)
  retryTimer = null
  attempts = 0
  openedBefore = false
  const ws = socket
  socket = null
  if (ws) ws.close(1000)
}

// handler(event) for every event; returns the function that unsubscribes it.
export function subscribe(handler) {
  handlers.add(handler)
  connect()
  return () => {
    handlers.delete(handler)
    if (!handlers.size) disconnect()
  }
}

// Whether the shared socket is open now (for a status dot, and for tests).
export function connected() {
  return !!socket && socket.readyState === WebSocket.OPEN
}

onSessionChange(session => {
  disconnect()
  if (session) connect()
})
