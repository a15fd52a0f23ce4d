// Files that stopped because the server could not be reached wait for the network and
// go again by themselves: when the browser says it is online again, when another
// request gets through, or, while the browser believes it is online (a server that
// is restarting, a Wi-Fi that holds on to a dead link), after a pause that grows.
// What the server refused (a 4xx, or a 500) is left to the person.
import {RECONNECT_DELAYS} from './settings.js'

// An error ({code, status}) that says nothing about the file: no answer came, or only a
// gateway's saying the server is out of reach (a 503 is also Tubei's backend_unavailable).
export function unreachable(error) {
  if (!error) return false
  if (error.status) return [502, 503, 504].includes(error.status)
  return error.code === 'offline' || error.code === 'network'
}

export class Reconnect {
  // again(): send the waiting files again now.
  constructor(again) {
    this.again = again
    this.waiting = false
    this.attempt = 0
    this.timer = null
    this.onOnline = () => this.now()
  }

  // A file has started waiting for the network.
  wait() {
    if (!this.waiting) {
      this.waiting = true
      window.addEventListener('online', this.onOnline)
    }
    if (this.timer) return
    const delay = RECONNECT_DELAYS[Math.min(this.attempt, RECONNECT_DELAYS.length - 1)]
    this.timer = setTimeout(() => {
      this.timer = null
      this.attempt += 1
      // Offline as far as the browser knows: its online event says when to try.
      if (navigator.onLine === false) this.wait()
      else this.fire()
    }, delay)
  }

  // Something got through to the server: the waiting files need not wait longer.
  now() {
    if (!this.waiting) return
    this.attempt = 0
    this.fire()
  }

  fire() {
    this.stop()
    this.again()
  }

  // Nothing waits any more (sent again, cancelled, or signed out).
  stop() {
    clearTimeout(this.timer)
    this.timer = null
    if (this.waiting) window.removeEventListener('online', this.onOnline)
    this.waiting = false
  }
}
