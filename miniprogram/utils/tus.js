// Large photos and every video go up as resumable tus uploads over wx.request (no
// PATCH in WeChat: POST with X-HTTP-Method-Override), each chunk read through a file
// descriptor (open/read/close): readFile refuses a file over 100 MB whatever its
// position and length say. Each started upload is remembered in storage
// under its digest so that the next start of the mini-program resumes it; those
// records stay within a small share of WeChat's 10 MB storage.
const api = require('./request')

const TUS_PATH = '/api/v1/uploads/'
const TUS_VERSION = '1.0.0'
const KEY_TUS = 'tubei.tus' // {digest: {url, path, size, name, kind, duration, thumb, at}}
const MAX_RECORDS = 100
const MAX_RECORD_BYTES = 256 * 1024 // of the JSON under KEY_TUS; WeChat allows 1 MB a key
const MAX_RECOVERIES = 3
const RECOVERY_DELAY = 300 // ms, times the attempt number

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

function call(fs, method, options) {
  return new Promise((resolve, reject) => {
    fs[method](Object.assign({}, options, {success: resolve, fail: reject}))
  })
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

// --- the records -------------------------------------------------------------------

function records() {
  return wx.getStorageSync(KEY_TUS) || {}
}

function record(digest) {
  return records()[digest]
}

function dropThumb(entry) {
  if (!entry || !entry.thumb) return
  try {
    wx.getFileSystemManager().unlinkSync(entry.thumb)
  } catch (e) {
    // already gone
  }
}

// Oldest first out when over budget: their uploads expire on the server anyway.
function remember(digest, entry) {
  const pending = records()
  pending[digest] = Object.assign({at: Date.now()}, entry)
  const order = Object.keys(pending).sort((a, b) => (pending[a].at || 0) - (pending[b].at || 0))
  while (order.length > 1 &&
    (order.length > MAX_RECORDS || JSON.stringify(pending).length > MAX_RECORD_BYTES)) {
    const oldest = order.shift()
    if (oldest === digest) continue
    dropThumb(pending[oldest])
    delete pending[oldest]
  }
  wx.setStorageSync(KEY_TUS, pending)
}

function update(digest, fields) {
  const pending = records()
  if (!pending[digest]) return
  Object.assign(pending[digest], fields)
  wx.setStorageSync(KEY_TUS, pending)
}

function forget(digest) {
  const pending = records()
  if (!(digest in pending)) return
  dropThumb(pending[digest])
  delete pending[digest]
  wx.setStorageSync(KEY_TUS, pending)
}

// --- the protocol ------------------------------------------------------------------

// HEAD: the server's durable offset (and, for a finished upload, its photo id).
async function offsetOf(url) {
  const head = await api.request({path: url, method: 'HEAD', header: {'Tus-Resumable': TUS_VERSION}, raw: true})
  return {offset: Number(headerValue(head.header, 'Upload-Offset')) || 0, imageId: headerValue(head.header, 'Tubei-Image-Id')}
}

// `length` bytes at `position` of an open file, as an ArrayBuffer.
async function readChunk(fs, fd, position, length) {
  const buffer = new ArrayBuffer(length)
  const {bytesRead} = await call(fs, 'read', {fd, arrayBuffer: buffer, offset: 0, length, position})
  if (!bytesRead) throw new Error('文件比选择时短，无法读完')
  return bytesRead === length ? buffer : buffer.slice(0, bytesRead)
}

// Send `item` ({path, size, name, digest, algorithm}) from wherever the server has
// it. hooks: onCreate(record) before the first byte, onProgress(percent),
// onImage(id), onUploadId(id) for matching the server's progress events.
async function send(fs, item, chunkSize, hooks) {
  const fields = {'Tus-Resumable': TUS_VERSION}
  let entry = record(item.digest)
  let offset = 0
  if (entry) {
    try {
      const at = await offsetOf(entry.url)
      offset = at.offset
      if (at.imageId) hooks.onImage(at.imageId)
      if (entry.path !== item.path) update(item.digest, {path: item.path})
    } catch (error) {
      if (error.status === 0) throw error // not reached: keep the record for later
      forget(item.digest) // expired or unknown on the server: start over
      entry = null
    }
  }
  if (!entry) {
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
    entry = {url: location.replace(/^https?:\/\/[^/]+/i, ''), path: item.path, size: item.size, name: item.name}
    if (item.kind === 'video') Object.assign(entry, {kind: 'video', duration: item.duration || 0})
    remember(item.digest, Object.assign(entry, await hooks.onCreate(entry)))
  }
  hooks.onUploadId(basename(entry.url))
  let recoveries = 0
  const {fd} = await call(fs, 'open', {filePath: item.path, flag: 'r'})
  try {
    while (offset < item.size) {
      const length = Math.min(chunkSize, item.size - offset)
      const chunk = await readChunk(fs, fd, offset, length)
      let answer
      try {
        answer = await api.request({
          path: entry.url,
          method: 'POST',
          raw: true,
          data: chunk,
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
        // carry on from there. A suspension (`interrupted`) pauses the whole upload.
        const dropped = error.status === 0 && !['domain', 'interrupted', 'privacy'].includes(error.code)
        const transient = dropped || error.status === 409
        if (!transient || ++recoveries > MAX_RECOVERIES) throw error
        await sleep(RECOVERY_DELAY * recoveries)
        const at = await offsetOf(entry.url)
        offset = at.offset
        if (at.imageId) hooks.onImage(at.imageId)
        continue
      }
      offset = Number(headerValue(answer.header, 'Upload-Offset'))
      hooks.onProgress(Math.floor((offset / item.size) * 100))
      const imageId = headerValue(answer.header, 'Tubei-Image-Id')
      if (imageId) hooks.onImage(imageId)
    }
  } finally {
    call(fs, 'close', {fd}).catch(() => {}) // a descriptor of a suspended run may be gone
  }
  forget(item.digest)
}

module.exports = {send, readChunk, records, record, remember, forget, base64Utf8, headerValue, call,
  KEY_TUS, TUS_PATH, TUS_VERSION, MAX_RECORDS, MAX_RECORD_BYTES}
