// The photos of the chunks in view, loaded by month cursor and dropped when far away,
// so that at most MAX_CHUNKS chunks (MAX_CHUNKS * CHUNK images) are ever held.
// A chunk j > 0 of a month starts at chunk j-1's next_cursor; the cursors are kept
// (a few bytes each) when the photos go, so coming back is one request.
import {api} from '../api.js'
import {CHUNK} from './layout.js'

export const MAX_CHUNKS = 24

export class Store {
  // first: a promise of GET /images?limit=CHUNK (the library's first page, asked for
  // beside /timeline so that the first screen does not wait for one more round trip);
  // it is month 0's chunk 0 when it answers, else that chunk is loaded as any other.
  constructor(months, onChange, first = null) {
    this.months = months
    this.onChange = onChange
    this.first = first
    this.items = new Map() // "m:j" -> [image]
    this.cursors = new Map() // "m:j" -> cursor
    this.loading = new Map() // "m:j" -> promise
    this.used = new Map() // "m:j" -> last time wanted
    this.clock = 0
    this.closed = false
    months.forEach((month, m) => this.cursors.set(`${m}:0`, month.cursor))
  }

  get(m, j) {
    return this.items.get(`${m}:${j}`)
  }

  // The chunks wanted now (visible rows + overscan): loaded if missing, others dropped.
  want(keys) {
    this.clock += 1
    for (const [m, j] of keys) {
      const key = `${m}:${j}`
      this.used.set(key, this.clock)
      if (!this.items.has(key)) this.load(m, j).catch(() => {})
    }
    if (this.items.size > MAX_CHUNKS) {
      const old = [...this.items.keys()].sort((a, b) => this.used.get(a) - this.used.get(b))
      for (const key of old.slice(0, this.items.size - MAX_CHUNKS)) {
        if (this.used.get(key) !== this.clock) this.items.delete(key)
      }
    }
  }

  async cursorOf(m, j) {
    const key = `${m}:${j}`
    if (this.cursors.has(key)) return this.cursors.get(key)
    await this.load(m, j - 1, false)
    return this.cursors.get(key)
  }

  load(m, j, keep = true) {
    const key = `${m}:${j}`
    if (this.loading.has(key)) return this.loading.get(key)
    const done = (async () => {
      const cursor = await this.cursorOf(m, j)
      const limit = Math.min(CHUNK, this.months[m].count - j * CHUNK)
      if (cursor === undefined || limit <= 0) return
      const first = key === '0:0' && this.first ? await this.first : null
      this.first = null
      const page = first || await api.get(`/images?limit=${limit}&cursor=${encodeURIComponent(cursor)}`)
      if (this.closed) return
      if (page.next_cursor && limit === CHUNK) this.cursors.set(`${m}:${j + 1}`, page.next_cursor)
      if (keep || this.used.get(key) === this.clock) {
        this.items.set(key, page.items.slice(0, limit))
        this.onChange()
      }
    })()
    this.loading.set(key, done)
    done.finally(() => this.loading.delete(key))
    return done
  }

  // The image at {m, k} (month m, k-th of it), its chunk loaded if need be; null if none.
  async at({m, k}) {
    if (!this.months[m] || k < 0 || k >= this.months[m].count) return null
    const j = Math.floor(k / CHUNK)
    if (!this.items.has(`${m}:${j}`)) await this.load(m, j)
    this.used.set(`${m}:${j}`, this.clock)
    const chunk = this.items.get(`${m}:${j}`)
    return (chunk && chunk[k % CHUNK]) || null
  }

  // The position `delta` (±1) away, across months; null past either end.
  step({m, k}, delta) {
    let next = {m, k: k + delta}
    if (next.k < 0) next = m > 0 ? {m: m - 1, k: this.months[m - 1].count - 1} : null
    else if (next.k >= this.months[m].count) next = m + 1 < this.months.length ? {m: m + 1, k: 0} : null
    return next
  }

  close() {
    this.closed = true
  }
}
