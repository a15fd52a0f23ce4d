// The signed-in device: its token, user and device record, kept in localStorage
// (`tubei.session`) so that a reload stays signed in. Listeners hear every change,
// including one made in another tab (the `storage` event).
const KEY = 'tubei.session'
const listeners = new Set()

function read() {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) || 'null')
    return value && typeof value.token === 'string' && value.token ? value : null
  } catch (e) {
    return null
  }
}

function notify() {
  const session = read()
  for (const listener of [...listeners]) listener(session)
}

export function getSession() {
  return read()
}

export function getToken() {
  const session = read()
  return session ? session.token : null
}

export function setToken(token, user, device) {
  localStorage.setItem(KEY, JSON.stringify({token, user, device}))
  notify()
}

export function clearToken() {
  if (localStorage.getItem(KEY) === null) return
  localStorage.removeItem(KEY)
  notify()
}

// listener(session | null) on every change; returns the function that stops it.
export function onSessionChange(listener) {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

window.addEventListener('storage', event => {
  if (event.key === KEY || event.key === null) notify()
})
