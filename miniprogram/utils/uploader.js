// Backing photos and videos up: hash each, ask the server which it already has, then
// send the rest — small photos as multipart (wx.uploadFile), large ones and every
// video as resumable tus (utils/tus.js). Uploads cut by the background are paused, not failed, and go on by
// themselves when the mini-program is in front again. Pages only render `items`.
const api = require('./request')
const events = require('./events')
const lifecycle = require('./lifecycle')
const tus = require('./tus')
const {readExif, stamp, extension, HEAD_BYTES} = require('./exif')
const localfiles = require('./localfiles')
const {notePicked} = require('./picked')
const {summarize} = require('./summary')
const {isVideoFile} = require('./video')

const MB = 1024 * 1024

const STATE_TEXT = {
  hashing: '检查中',
  exists: '已存在',
  waiting: '等待中',
  uploading: '上传中',
  paused: '已暂停',
  done: '已备份',
  failed: '失败',
  missing: '请重新选择',
}
const SETTLED = ['done', 'exists', 'failed', 'missing']
// A call WeChat cut because we went to the background: the photo waits and goes again.
const PAUSING = ['interrupted']

let serial = 0
function newId(prefix) {
  serial += 1
  return `${prefix}-${Date.now().toString(36)}-${serial}`
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
    this.names = new Set()
    this.awake = false
    this.batch = null // {started, bytes} while photos are on their way
    this.offs = [
      events.on('upload.progress', e => this.serverProgress(e)),
      lifecycle.on('show', () => this.resumePaused()),
    ]
  }

  destroy() {
    this.offs.forEach(off => off())
    this.keepAwake(false)
  }

  // tempFiles as wx.chooseMedia ({tempFilePath, size, fileType, duration,
  // thumbTempFilePath}) or wx.chooseMessageFile ({path, size, name, time}) give them. Resolves when all of them settle.
  add(tempFiles, {source = 'album'} = {}) {
    const picked = new Date()
    const items = tempFiles.map(file => {
      const path = file.tempFilePath || file.path
      const video = isVideoFile(file)
      return {
        key: newId('p'),
        path,
        kind: video ? 'video' : 'photo',
        duration: video ? Number(file.duration) || 0 : 0,
        // a video's own path is no <image>: its poster, or nothing
        thumb: file.thumb || file.thumbTempFilePath || (video ? '' : path),
        // A chat file keeps its name; an album pick has none (only a tmp_ path) until
        // its EXIF time or the time of the pick gives it one.
        name: file.name || '',
        picked,
        source,
        size: file.size || 0,
        state: 'hashing',
        stateText: STATE_TEXT.hashing,
        progress: 0,
        error: '',
        suspect: false,
      }
    })
    this.items = this.items.concat(items)
    this.changed()
    return this.prepare(items)
  }

  // Uploads a restart cut short: resumed when the file is still there, else shown
  // with their saved thumbnail and size for the person to pick again.
  resumePending() {
    const pending = tus.records()
    const files = []
    Object.keys(pending).forEach(digest => {
      const entry = pending[digest]
      if (this.items.some(i => i.digest === digest)) return
      if (entry.path && localfiles.accessible(this.fs, entry.path)) {
        files.push({tempFilePath: entry.path, size: entry.size, name: entry.name, thumb: entry.thumb,
          fileType: entry.kind === 'video' ? 'video' : 'image', duration: entry.duration})
      } else {
        this.items.push({key: newId('m'), digest, name: entry.name, size: entry.size, path: '',
          kind: entry.kind === 'video' ? 'video' : 'photo', duration: entry.duration || 0,
          thumb: entry.thumb || '', state: 'missing', stateText: STATE_TEXT.missing, progress: 0,
          error: '', suspect: false, source: 'album'})
      }
    })
    if (this.items.some(i => i.state === 'missing')) this.changed()
    return files.length ? this.add(files) : Promise.resolve([])
  }

  // The person picked a photo again for a missing one: the same bytes resume their
  // upload; other bytes are a new photo, and the missing one stays asked for.
  async repick(item, tempFile) {
    const path = tempFile.tempFilePath || tempFile.path
    const hash = await localfiles.hashFile(this.fs, path)
    if (hash.digest !== item.digest) {
      await this.add([tempFile])
      return false
    }
    Object.assign(item, hash, {path, thumb: item.thumb || tempFile.thumbTempFilePath || path, name: item.name})
    this.setState(item, 'waiting')
    this.pump()
    await this.settled([item])
    return true
  }

  async prepare(items) {
    await Promise.all(items.map(async item => {
      try {
        const hash = await localfiles.hashFile(this.fs, item.path)
        Object.assign(item, hash)
        if (!item.name) await this.nameFromPhoto(item)
      } catch (error) {
        this.fail(item, error)
      }
    }))
    try {
      await this.check(items.filter(item => item.digest && item.state === 'hashing'))
    } catch (error) {
      items.filter(i => i.state === 'hashing').forEach(i => this.pauseOrFail(i, error))
    }
    this.pump()
    return this.settled(items)
  }

  // IMG_<EXIF time or pick time>.<ext> (a video: VID_<pick time>), never the tmp_
  // name WeChat hands over.
  async nameFromPhoto(item) {
    let found = {jpeg: false, exif: false, taken: ''}
    if (item.kind === 'video') {
      this.uniqueName(item, `VID_${stamp(item.picked || new Date())}`)
      return
    }
    try {
      const head = await tus.call(this.fs, 'readFile', {filePath: item.path, position: 0,
        length: Math.min(HEAD_BYTES, item.size || HEAD_BYTES)})
      found = readExif(head.data)
    } catch (e) {
      // unreadable head: named by the pick time
    }
    item.noExif = !found.exif
    this.uniqueName(item, `IMG_${found.taken || stamp(item.picked || new Date())}`)
  }

  uniqueName(item, base) {
    const ext = extension(item.path)
    let name = `${base}.${ext}`
    for (let n = 1; this.names.has(name); n++) name = `${base}_${n}.${ext}`
    this.names.add(name)
    item.name = name
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
          tus.forget(item.digest)
          this.setState(item, 'exists', {progress: 100})
        } else {
          this.setState(item, 'waiting')
        }
      })
    }
  }

  pump() {
    // Nothing new starts in the background: WeChat would cut it within seconds.
    while (this.running < this.parallel && !lifecycle.isHidden()) {
      const item = this.items.find(i => i.state === 'waiting')
      if (!item) return
      this.running += 1
      this.setState(item, 'uploading', {progress: item.progress || 0, error: ''})
      // A started tus upload stays tus, even if the threshold has changed since; a
      // video always goes by tus (it is big, and uploadFile cannot resume).
      const resumable = Boolean(tus.record(item.digest)) || item.kind === 'video'
      const send = resumable || item.size >= this.threshold ? this.sendTus(item) : this.sendMultipart(item)
      send.then(
        () => this.finished(item),
        error => this.pauseOrFail(item, error)
      ).then(() => {
        this.running -= 1
        this.pump()
      })
    }
  }

  finished(item) {
    const exif = item.image ? item.image.exif : undefined
    item.suspect = item.source === 'album' && (exif === false || (exif === undefined && item.noExif))
    const id = item.imageId || (item.image && item.image.id)
    if (item.source === 'album' && item.noExif && id) notePicked(id)
    this.setState(item, 'done', {progress: 100, doneAt: Date.now()})
  }

  pauseOrFail(item, error) {
    if (!PAUSING.includes(error && error.code)) return this.fail(item, error)
    // In front again already (WeChat delivers the failure on return): straight back in line.
    const state = lifecycle.isHidden() ? 'paused' : 'waiting'
    this.setState(item, item.digest ? state : 'hashing', {error: ''})
    if (!item.digest) this.prepare([item])
  }

  resumePaused() {
    this.items.filter(i => i.state === 'paused').forEach(i => this.setState(i, 'waiting'))
    this.pump()
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

  // wx.uploadFile names the part after the file, so the photo goes from a copy
  // under its own name (utils/localfiles.js), removed afterwards.
  sendMultipart(item) {
    item.uploadId = newId('up')
    this.byUploadId[item.uploadId] = item
    const named = localfiles.namedCopy(this.fs, item)
    return api.upload({
      path: '/api/v1/images',
      filePath: named || item.path,
      name: 'photo',
      header: {'X-Upload-Id': item.uploadId},
      onProgress: ({progress}) => this.progress(item, progress),
    }).then(answer => {
      item.image = answer.items && answer.items[0]
    }).finally(() => {
      if (named) localfiles.removeCopy(this.fs, named)
    })
  }

  sendTus(item) {
    return tus.send(this.fs, item, this.chunkSize, {
      // a small copy of the photo, shown after a restart if its file is gone
      onCreate: () => localfiles.savePendingThumb(this.fs, item),
      onProgress: percent => this.progress(item, percent),
      onImage: id => { item.imageId = id },
      onUploadId: id => { this.byUploadId[id] = item },
    })
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

  // The screen stays on while photos are on their way: a locked phone suspends us.
  keepAwake(on) {
    if (on === this.awake) return
    this.awake = on
    if (wx.setKeepScreenOn) wx.setKeepScreenOn({keepScreenOn: on})
  }

  changed() {
    const active = this.items.filter(i => !SETTLED.includes(i.state) && i.state !== 'exists')
    if (active.length && !this.batch) this.batch = {started: Date.now()}
    if (!active.length) this.batch = null
    this.keepAwake(active.length > 0)
    this.onChange(this.items)
    this.waiters = this.waiters.filter(w => {
      if (!w.items.every(i => SETTLED.includes(i.state) || i.state === 'exists')) return true
      w.resolve(w.items)
      return false
    })
  }

  // Counts, and while a backup runs: items left and seconds left (utils/summary.js).
  summary() {
    return summarize(this.items, this.batch)
  }
}

module.exports = {Uploader, hashFile: localfiles.hashFile, STATE_TEXT, MB,
  KEY_TUS: tus.KEY_TUS, TUS_PATH: tus.TUS_PATH, base64Utf8: tus.base64Utf8}
