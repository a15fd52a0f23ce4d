// Backing photos up: hash each, ask the server which it already has, then send the
// rest — small ones as multipart (wx.uploadFile), large ones as resumable tus
// chunks over wx.request. Pages only render `items` and call add/retryFailed.
const api = require('./request')
const events = require('./events')

const MB = 1024 * 1024
const TUS_PATH = '/api/v1/uploads/'
const TUS_VERSION = '1.0.0'
const KEY_TUS = 'tubei.tus' // {digest: {url, path, size, name}} for uploads to resume
const MAX_RECOVERIES = 3
const RECOVERY_DELAY = 300 // ms, times the attempt number

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

const STATE_TEXT = {
  hashing: '检查中',
  exists: '已存在',
  waiting: '等待中',
  uploading: '上传中',
  done: '已备份',
  failed: '失败',
}

let serial = 0
function newId(prefix) {
  serial += 1
  return `${prefix}-${Date.now().toString(36)}-${serial}`
}

function call(fs, method, options) {
  return new Promise((resolve, reject) => {
    fs[method](Object.assign({}, options, {success: resolve, fail: reject}))
  })
}

// sha256 where the base library has it, md5 otherwise; the server checks either.
async function hashFile(fs, filePath) {
  for (const algorithm of ['sha256', 'md5']) {
    try {
      const info = await call(fs, 'getFileInfo', {filePath, digestAlgorithm: algorithm})
      if (info.digest) return {algorithm, digest: info.digest.toLowerCase(), size: info.size}
    } catch (e) {
      // An older base library refuses sha256: try the next algorithm.
    }
  }
  throw new Error('无法读取这张照片')
}

function headerValue(header, name) {
  const wanted = name.toLowerCase()
  const key = Object.keys(header || {}).find(k => k.toLowerCase() === wanted)
  return key === undefined ? undefined : header[key]
}

// tus Upload-Metadata values are base64 of UTF-8; filenames can be Chinese.
function base64Utf8(text) {
  const bytes = unescape(encodeURIComponent(text))
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  let out = ''
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes.charCodeAt(i)
    const b = i + 1 < bytes.length ? bytes.charCodeAt(i + 1) : NaN
    const c = i + 2 < bytes.length ? bytes.charCodeAt(i + 2) : NaN
    out += alphabet[a >> 2] + alphabet[((a & 3) << 4) | ((b || 0) >> 4)]
    out += isNaN(b) ? '=' : alphabet[((b & 15) << 2) | ((c || 0) >> 6)]
    out += isNaN(c) ? '=' : alphabet[c & 63]
  }
  return out
}

function basename(path) {
  return String(path).split('/').pop()
}

class Uploader {
  // threshold: files at least this big go by tus; chunkSize: bytes per tus PATCH;
  // parallel: photos sent at once (all requests also share request.js's limit of 10).
  constructor({threshold = 10 * MB, chunkSize = 4 * MB, parallel = 3, onChange} = {}) {
    this.threshold = threshold
    this.chunkSize = chunkSize
    this.parallel = parallel
    this.onChange = onChange || (() => {})
    this.items = []
    this.running = 0
    this.fs = wx.getFileSystemManager()
    this.byUploadId = {}
    this.waiters = []
    this.offProgress = events.on('upload.progress', e => this.serverProgress(e))
  }

  destroy() {
    this.offProgress()
  }

  // tempFiles as wx.chooseMedia gives them. Resolves when all of them settle.
  add(tempFiles, extra = {}) {
    const items = tempFiles.map(file => ({
      key: newId('p'),
      path: file.tempFilePath,
      thumb: file.thumbTempFilePath || file.tempFilePath,
      name: file.name || basename(file.tempFilePath),
      size: file.size || 0,
      state: 'hashing',
      stateText: STATE_TEXT.hashing,
      progress: 0,
      error: '',
      ...extra,
    }))
    this.items = this.items.concat(items)
    this.changed()
    return this.prepare(items)
  }

  // Uploads a tus upload that was interrupted (the mini-program closed) resume here.
  resumePending() {
    const pending = wx.getStorageSync(KEY_TUS) || {}
    const files = []
    Object.keys(pending).forEach(digest => {
      const record = pending[digest]
      try {
        this.fs.accessSync(record.path)
        files.push({tempFilePath: record.path, size: record.size, name: record.name})
      } catch (e) {
        this.forgetTus(digest) // the temp file is gone: nothing left to send
      }
    })
    return files.length ? this.add(files) : Promise.resolve([])
  }

  async prepare(items) {
    await Promise.all(items.map(async item => {
      try {
        const hash = await hashFile(this.fs, item.path)
        Object.assign(item, hash)
      } catch (error) {
        this.fail(item, error)
      }
    }))
    try {
      await this.check(items.filter(item => item.digest))
    } catch (error) {
      items.filter(i => i.state === 'hashing').forEach(i => this.fail(i, error))
    }
    this.pump()
    return this.settled(items)
  }

  async check(items) {
    for (const algorithm of ['sha256', 'md5']) {
      const group = items.filter(i => i.algorithm === algorithm)
      if (!group.length) continue
      const answer = await api.request({
        path: '/api/v1/images/check',
        method: 'POST',
        data: {[algorithm]: group.map(i => i.digest)},
      })
      const present = new Set(answer.present)
      group.forEach(item => {
        if (present.has(item.digest)) {
          this.forgetTus(item.digest)
          this.setState(item, 'exists', {progress: 100})
        } else {
          this.setState(item, 'waiting')
        }
      })
    }
  }

  pump() {
    while (this.running < this.parallel) {
      const item = this.items.find(i => i.state === 'waiting')
      if (!item) return
      this.running += 1
      this.setState(item, 'uploading', {progress: 0, error: ''})
      // A started tus upload stays tus, even if the threshold has changed since.
      const resumable = item.digest in (wx.getStorageSync(KEY_TUS) || {})
      const send = resumable || item.size >= this.threshold ? this.sendTus(item) : this.sendMultipart(item)
      send.then(
        () => this.setState(item, 'done', {progress: 100}),
        error => this.fail(item, error)
      ).then(() => {
        this.running -= 1
        this.pump()
      })
    }
  }

  settled(items) {
    return new Promise(resolve => {
      this.waiters.push({items, resolve})
      this.changed()
    })
  }

  retryFailed() {
    const failed = this.items.filter(i => i.state === 'failed')
    failed.forEach(item => this.setState(item, item.digest ? 'waiting' : 'hashing'))
    const unhashed = failed.filter(i => !i.digest)
    if (unhashed.length) this.prepare(unhashed)
    this.pump()
    return this.settled(failed)
  }

  sendMultipart(item) {
    item.uploadId = newId('up')
    this.byUploadId[item.uploadId] = item
    return api.upload({
      path: '/api/v1/images',
      filePath: item.path,
      name: 'photo',
      header: {'X-Upload-Id': item.uploadId},
      onProgress: ({progress}) => this.progress(item, progress),
    }).then(answer => {
      item.image = answer.items && answer.items[0]
    })
  }

  async sendTus(item) {
    const fields = {'Tus-Resumable': TUS_VERSION}
    let record = (wx.getStorageSync(KEY_TUS) || {})[item.digest]
    let offset = 0
    if (record) {
      try {
        offset = await this.tusOffset(record.url, item)
      } catch (error) {
        if (error.code === 'unreachable') throw error
        record = null // expired or unknown on the server: start over
      }
    }
    if (!record) {
      const metadata = [`filename ${base64Utf8(item.name)}`]
      // With the whole file's sha256 the server refuses bytes that arrive changed.
      if (item.algorithm === 'sha256') metadata.push(`sha256 ${base64Utf8(item.digest)}`)
      const created = await api.request({
        path: TUS_PATH,
        method: 'POST',
        raw: true,
        header: Object.assign({}, fields, {
          'Upload-Length': String(item.size),
          'Upload-Metadata': metadata.join(','),
        }),
      })
      const location = headerValue(created.header, 'Location')
      record = {url: location.replace(/^https?:\/\/[^/]+/i, ''), path: item.path, size: item.size, name: item.name}
      this.rememberTus(item.digest, record)
    }
    // The server's upload.progress events for a tus upload carry its id.
    this.byUploadId[basename(record.url)] = item
    let recoveries = 0
    while (offset < item.size) {
      const length = Math.min(this.chunkSize, item.size - offset)
      const chunk = await call(this.fs, 'readFile', {filePath: item.path, position: offset, length})
      let answer
      try {
        // wx.request cannot send PATCH; the server honours the override header.
        answer = await api.request({
          path: record.url,
          method: 'POST',
          raw: true,
          data: chunk.data,
          header: Object.assign({}, fields, {
            'X-HTTP-Method-Override': 'PATCH',
            'Content-Type': 'application/offset+octet-stream',
            'Upload-Offset': String(offset),
          }),
        })
      } catch (error) {
        // A dropped connection, or 409 (the server holds another offset: an earlier
        // chunk landed after all, or only partly; a server refusing a chunk may also
        // close the connection before the answer is read): ask where it stands and
        // carry on from there. If even that fails, the photo waits for a retry.
        const transient = error.code === 'unreachable' || error.status === 409
        if (!transient || ++recoveries > MAX_RECOVERIES) throw error
        await sleep(RECOVERY_DELAY * recoveries)
        offset = await this.tusOffset(record.url, item)
        continue
      }
      offset = Number(headerValue(answer.header, 'Upload-Offset'))
      this.progress(item, Math.floor((offset / item.size) * 100))
      this.noteImage(item, answer.header)
    }
    this.forgetTus(item.digest)
  }

  // HEAD: the server's durable offset (and, for a finished upload, its photo).
  async tusOffset(url, item) {
    const head = await api.request({path: url, method: 'HEAD', header: {'Tus-Resumable': TUS_VERSION}, raw: true})
    this.noteImage(item, head.header)
    return Number(headerValue(head.header, 'Upload-Offset')) || 0
  }

  noteImage(item, header) {
    const imageId = headerValue(header, 'Tubei-Image-Id')
    if (imageId) item.imageId = imageId
  }

  rememberTus(digest, record) {
    const pending = wx.getStorageSync(KEY_TUS) || {}
    pending[digest] = record
    wx.setStorageSync(KEY_TUS, pending)
  }

  forgetTus(digest) {
    const pending = wx.getStorageSync(KEY_TUS) || {}
    if (!(digest in pending)) return
    delete pending[digest]
    wx.setStorageSync(KEY_TUS, pending)
  }

  // The server's own count (events socket) and the task's percentage both feed
  // progress; it only ever rises, whichever is ahead.
  serverProgress({upload_id: uploadId, received, total}) {
    const item = this.byUploadId[uploadId]
    if (item && total) this.progress(item, Math.floor((received / total) * 100))
  }

  progress(item, percent) {
    if (item.state !== 'uploading' || percent <= item.progress) return
    item.progress = Math.min(percent, 99) // 100 only once the server has answered
    this.changed()
  }

  fail(item, error) {
    this.setState(item, 'failed', {error: (error && error.message) || '上传失败'})
  }

  setState(item, state, extra = {}) {
    Object.assign(item, {state, stateText: STATE_TEXT[state]}, extra)
    this.changed()
  }

  changed() {
    this.onChange(this.items)
    const settled = i => ['done', 'exists', 'failed'].includes(i.state)
    this.waiters = this.waiters.filter(w => {
      if (!w.items.every(settled)) return true
      w.resolve(w.items)
      return false
    })
  }

  summary() {
    const count = state => this.items.filter(i => i.state === state).length
    return {done: count('done'), exists: count('exists'), failed: count('failed'),
      active: this.items.length - count('done') - count('exists') - count('failed')}
  }
}

module.exports = {Uploader, hashFile, base64Utf8, STATE_TEXT, KEY_TUS, TUS_PATH, MB}
