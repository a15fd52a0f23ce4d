// The upload queue, one for the whole app: each file is hashed (SHA-256, in a worker),
// asked about (POST /images/check, so what the server has is never sent), then sent
// with tus, resumably. A file is "stored" only when the server says so: its
// upload.done event, or the Tubei-Image-Id of the last PATCH's answer.
//
// item.state: hashing → checking → waiting → uploading → processing → stored
//             or exists (already in the library), failed (retry), skipped (not media),
//             cancelled, offline (the server out of reach: sent again by itself, from
//             the server's offset, once it can be reached).
import {api} from '../api.js'
import {subscribe} from '../events.js'
import {onSessionChange} from '../session.js'
import {hash} from './hasher.js'
import {isMedia, relativePath} from './media.js'
import {CHECK_BATCH, PARALLEL_UPLOADS} from './settings.js'
import {Reconnect, unreachable} from './reconnect.js'
import {begin, explain, offsetOf, terminate, tusUpload, uploadIdOf} from './tus.js'
import {forget, listUnfinished, remember} from './unfinished.js'

export const SETTLED = new Set(['stored', 'exists', 'failed', 'skipped', 'cancelled'])
export const ACTIVE = new Set(['hashing', 'checking', 'waiting', 'uploading', 'processing', 'offline'])

let serial = 0

export class UploadQueue {
  constructor() {
    this.items = []
    this.listeners = new Set()
    this.byUploadId = new Map()
    this.toCheck = []
    this.toSend = []
    this.running = 0
    this.checkTimer = null
    this.notifyTimer = null
    this.interrupted = listUnfinished()
    this.unsubscribe = null
    this.reconnect = new Reconnect(() => this.reconnected())
  }

  // listener() after changes, at most every 100 ms; returns the unsubscribe function.
  // The first listener opens the events socket for the server's progress.
  listen(listener) {
    this.listeners.add(listener)
    if (!this.unsubscribe) this.unsubscribe = subscribe(event => this.serverEvent(event))
    return () => {
      this.listeners.delete(listener)
      if (!this.listeners.size && this.unsubscribe) {
        this.unsubscribe()
        this.unsubscribe = null
      }
    }
  }

  changed() {
    if (this.notifyTimer) return
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = null
      for (const listener of [...this.listeners]) listener()
    }, 100)
  }

  // Files as picked or dropped; each becomes an item of the queue.
  add(files) {
    for (const file of files) {
      serial += 1
      const item = {
        key: `u${serial}`,
        file,
        name: file.name,
        path: relativePath(file),
        size: file.size,
        type: file.type,
        state: isMedia(file) ? 'hashing' : 'skipped',
        sha256: null,
        hashed: 0,
        sent: 0,
        received: 0,
        resumedFrom: 0,
        error: null,
        url: null,
        tus: null,
        job: null,
        addedAt: performance.now(),
        startedAt: 0,
      }
      this.items.push(item)
      if (item.state === 'hashing') this.startHash(item)
    }
    this.changed()
  }

  startHash(item) {
    item.state = 'hashing'
    item.error = null
    item.hashed = 0
    const job = hash(item.file, done => {
      item.hashed = done
      this.changed()
    })
    item.job = job
    job.promise.then(sha256 => {
      if (item.job !== job || item.state !== 'hashing') return
      item.job = null
      item.sha256 = sha256
      this.hashed(item)
    }, error => {
      if (item.job !== job || item.state !== 'hashing') return
      item.job = null
      this.fail(item, {code: 'unreadable', message: error.message})
    })
  }

  hashed(item) {
    this.interrupted = this.interrupted.filter(entry => entry.sha256 !== item.sha256)
    const twin = this.items.find(other => other !== item && other.sha256 === item.sha256 &&
      (ACTIVE.has(other.state) || other.state === 'stored' || other.state === 'exists'))
    if (twin) {
      item.state = 'exists'
      item.twin = true
    } else {
      item.state = 'checking'
      this.toCheck.push(item)
      this.scheduleCheck()
    }
    this.changed()
  }

  // A batch once hashing pauses (or the batch is full), so that a folder of thousands
  // asks in a few requests rather than one a file.
  scheduleCheck() {
    const hashing = this.items.some(item => item.state === 'hashing')
    if (this.toCheck.length >= CHECK_BATCH || !hashing) {
      clearTimeout(this.checkTimer)
      this.checkTimer = null
      this.check()
    } else if (!this.checkTimer) {
      this.checkTimer = setTimeout(() => {
        this.checkTimer = null
        this.check()
      }, 300)
    }
  }

  async check() {
    while (this.toCheck.length) {
      const batch = this.toCheck.splice(0, CHECK_BATCH).filter(item => item.state === 'checking')
      if (!batch.length) continue
      let present
      try {
        const answer = await api.post('/images/check', {sha256: batch.map(item => item.sha256)})
        present = new Set(answer.present)
        this.reconnect.now()
      } catch (error) {
        for (const item of batch) {
          this.fail(item, {code: error.code || 'network', message: error.message || '', status: error.status || 0, stage: 'check'})
        }
        continue
      }
      for (const item of batch) {
        if (item.state !== 'checking') continue
        if (present.has(item.sha256)) {
          item.state = 'exists'
          this.abandonStale(item)
        } else {
          item.state = 'waiting'
          remember(item)
          this.toSend.push(item)
        }
      }
      this.changed()
      this.pump()
    }
  }

  // The server has the photo already: an unfinished upload of it from before a reload
  // is of no use, and counts against the person's open uploads until it expires.
  abandonStale(item) {
    const entry = listUnfinished().find(e => e.sha256 === item.sha256)
    forget(item.sha256)
    if (entry && entry.url) terminate(entry.url)
  }

  pump() {
    while (this.running < PARALLEL_UPLOADS && this.toSend.length) {
      const item = this.toSend.shift()
      if (item.state === 'waiting') this.send(item)
    }
  }

  async send(item) {
    this.running += 1
    item.state = 'uploading'
    item.error = null
    item.startedAt = performance.now()
    const upload = tusUpload(item, {
      url: url => {
        item.url = url
        this.byUploadId.set(uploadIdOf(url), item)
        remember(item)
      },
      answered: (method, status) => {
        // Bytes or a new upload got through: the server can be reached again.
        if ((method === 'PATCH' || method === 'POST') && status >= 200 && status < 300) this.reconnect.now()
      },
      resumed: offset => {
        item.resumedFrom = offset
        item.sent = Math.max(item.sent, offset)
      },
      progress: sent => {
        if (item.tus !== upload) return
        item.sent = sent
        this.changed()
      },
      success: lastResponse => {
        if (item.tus !== upload) return
        this.finished(item)
        const id = lastResponse && lastResponse.getHeader('Tubei-Image-Id')
        if (id) this.stored(item, lastResponse.getHeader('Tubei-Duplicate') === 'true')
        else if (item.state === 'uploading') item.state = 'processing'
        this.changed()
      },
      error: error => {
        if (item.tus !== upload) return
        this.finished(item)
        if (item.state !== 'stored' && item.state !== 'exists') this.fail(item, explain(error))
      },
    })
    item.tus = upload
    await begin(upload, () => item.tus === upload)
  }

  finished(item) {
    if (!item.tus) return
    item.tus = null
    this.running -= 1
    this.pump()
  }

  serverEvent(event) {
    if (!event.upload_id) return
    const item = this.byUploadId.get(event.upload_id)
    if (!item) return
    if (event.type === 'upload.progress') {
      item.received = Math.max(item.received, event.received)
      if (item.state === 'uploading' && event.total && event.received >= event.total) item.state = 'processing'
    } else if (event.type === 'upload.done') {
      this.stored(item, event.duplicate)
    } else if (event.type === 'upload.failed' && !SETTLED.has(item.state)) {
      this.fail(item, {code: event.error.code, message: event.error.message})
    }
    this.changed()
  }

  stored(item, duplicate) {
    if (item.state === 'stored' || item.state === 'exists' || item.state === 'cancelled') return
    item.state = duplicate ? 'exists' : 'stored'
    item.sent = item.received = item.size
    forget(item.sha256)
    const detail = {name: item.name, size: item.size}
    performance.measure('tubei.upload', {start: item.startedAt, end: performance.now(), detail})
    performance.measure('tubei.pick-to-stored', {start: item.addedAt, end: performance.now(), detail})
  }

  fail(item, error) {
    item.state = unreachable(error) ? 'offline' : 'failed'
    item.error = error
    if (item.state === 'offline') this.reconnect.wait()
    this.changed()
  }

  retry(item) {
    if (item.state !== 'failed' && item.state !== 'cancelled' && item.state !== 'offline') return
    const stage = item.error && item.error.stage
    item.error = null
    if (!item.sha256) this.startHash(item)
    else if (stage === 'check') this.hashed(item)
    else {
      item.state = 'waiting'
      remember(item)
      this.toSend.push(item)
      this.pump()
    }
    this.changed()
  }

  reconnected() {
    for (const item of this.items) if (item.state === 'offline') this.retry(item)
  }

  retryFailed() {
    for (const item of this.items) if (item.state === 'failed') this.retry(item)
  }

  cancel(item) {
    if (!ACTIVE.has(item.state)) return
    if (item.job) item.job.cancel()
    item.job = null
    const upload = item.tus
    if (upload) {
      this.finished(item)
      upload.abort(true).catch(() => {})
    } else if (item.state === 'offline' && item.url) {
      terminate(item.url)
    }
    item.state = 'cancelled'
    if (item.sha256) forget(item.sha256)
    this.changed()
  }

  cancelAll() {
    for (const item of this.items) this.cancel(item)
  }

  // Drops the rows that need nothing more (sent, already there, skipped, cancelled).
  clearSettled() {
    this.items = this.items.filter(item => !SETTLED.has(item.state) || item.state === 'failed')
    this.changed()
  }

  // An upload from before the reload that the person gives up: gone from the server too.
  abandonInterrupted(sha256) {
    const entry = this.interrupted.find(e => e.sha256 === sha256)
    this.interrupted = this.interrupted.filter(e => e.sha256 !== sha256)
    forget(sha256)
    if (entry && entry.url) terminate(entry.url)
    this.changed()
  }

  // How far each interrupted upload had gone, asked of the server (HEAD).
  async describeInterrupted() {
    for (const entry of this.interrupted) {
      if (entry.url) entry.offset = await offsetOf(entry.url)
    }
    this.changed()
  }

  summary() {
    const counted = this.items.filter(item => item.state !== 'skipped' && item.state !== 'cancelled')
    let bytes = 0
    let done = 0
    const states = {}
    for (const item of this.items) states[item.state] = (states[item.state] || 0) + 1
    for (const item of counted) {
      bytes += item.size
      if (item.state === 'stored' || item.state === 'exists') done += item.size
      else done += Math.min(item.size, Math.max(item.sent, item.received))
    }
    const settled = counted.filter(item => SETTLED.has(item.state)).length
    return {files: counted.length, settled, bytes, done, states, active: counted.length - settled}
  }

  // Signed out: stop sending, and leave nothing of this person's files in the browser
  // for whoever signs in next (their uploads expire on the server).
  signedOut() {
    for (const item of this.items) {
      if (item.tus) item.tus.abort(false).catch(() => {})
      if (item.job) item.job.cancel()
      item.tus = item.job = null
    }
    for (const entry of listUnfinished()) forget(entry.sha256)
    this.items = []
    this.interrupted = []
    this.toCheck = []
    this.toSend = []
    this.running = 0
    this.byUploadId.clear()
    this.reconnect.stop()
    this.changed()
  }
}

export const uploads = new UploadQueue()
onSessionChange(session => {
  if (!session) uploads.signedOut()
})
