// Videos on the kit's phone: wx.previewMedia (its player loads a video as <video>
// does: a GET with `Range: bytes=0-` and no other header, so a URL that needs the
// bearer token fails there, as on a phone) and wx.saveVideoToPhotosAlbum (a local
// MP4 only, behind the album permission and the privacy agreement). The parameters
// are checked the way the base library checks them.
const crypto = require('crypto')
const fs = require('fs')
const http = require('http')
const path = require('path')
const {refusal} = require('./phone')

// WeChat's documentation: saveVideoToPhotosAlbum takes an mp4.
const SAVABLE = ['.mp4']

function isBmff(file) {
  const fd = fs.openSync(file, 'r')
  try {
    const head = Buffer.alloc(12)
    fs.readSync(fd, head, 0, 12, 0)
    return head.toString('latin1', 4, 8) === 'ftyp'
  } finally {
    fs.closeSync(fd)
  }
}

// kit; settle: kit/wx.js's callbacks; gated(api, options, run): the privacy agreement.
function makeMedia(kit, {settle, gated}) {
  // A video source as the player loads it: {src, ok, status, type, bytes, head, error}.
  // Only the first `peek` bytes are read (a player starts with the head), then it hangs up.
  function loadVideo(src, {peek = 64 * 1024} = {}) {
    const done = fields => Object.assign({src, bytes: 0}, fields)
    if (typeof src !== 'string' || !src) return Promise.resolve(done({ok: false, error: 'no src'}))
    if (kit.state === 'suspended') return Promise.resolve(done({ok: false, error: 'interrupted'}))
    if (!/^https?:\/\//i.test(src)) {
      return Promise.resolve(fs.existsSync(src) ? done({ok: true, status: 0, head: fs.readFileSync(src).subarray(0, peek)})
        : done({ok: false, error: 'file not found'}))
    }
    const reason = refusal(kit.phone, 'downloadFile', src)
    if (reason) return Promise.resolve(done({ok: false, error: reason}))
    if (!kit.online) return Promise.resolve(done({ok: false, error: 'net::ERR_INTERNET_DISCONNECTED'}))
    kit.sent += 1
    return new Promise(resolve => {
      const request = http.get(src, {agent: false, headers: {Range: 'bytes=0-'}}, response => {
        const chunks = []
        let bytes = 0
        const finish = () => {
          const type = response.headers['content-type'] || ''
          const ok = [200, 206].includes(response.statusCode) && type.startsWith('video/')
          resolve(done({ok, status: response.statusCode, type, bytes, head: Buffer.concat(chunks).subarray(0, peek),
            error: ok ? undefined : `status ${response.statusCode}`}))
        }
        response.on('data', chunk => {
          bytes += chunk.length
          kit.received += chunk.length
          chunks.push(chunk)
          if (bytes >= peek) {
            response.destroy()
            finish()
          }
        })
        response.on('end', finish)
        response.on('error', error => resolve(done({ok: false, error: error.message})))
      })
      request.on('error', error => resolve(done({ok: false, error: error.message})))
    })
  }

  function sourcesError(options) {
    const sources = options.sources
    if (!Array.isArray(sources)) return `parameter error: parameter.sources should be Array instead of ${typeof sources};`
    if (!sources.length) return 'parameter error: parameter.sources should not be empty;'
    for (const source of sources) {
      if (!source || typeof source.url !== 'string' || !source.url) return 'parameter error: sources[].url should be String;'
      if (source.type !== undefined && !['image', 'video'].includes(source.type)) {
        return `parameter error: invalid sources[].type "${source.type}";`
      }
    }
    const current = options.current === undefined ? 0 : options.current
    if (!Number.isInteger(current)) return `parameter error: parameter.current should be Number instead of ${typeof current};`
    return null
  }

  // The preview opens on sources[current]: a video is played (its poster shown while it
  // loads), a photo loaded as <image> loads it. `shown` says whether the person sees it.
  function previewMedia(options) {
    const entry = {api: 'previewMedia', sources: options.sources, current: options.current, shown: null}
    kit.log.push(entry)
    const wrong = sourcesError(options)
    if (wrong) return settle(options, {errMsg: `previewMedia:fail ${wrong}`})
    const at = Math.min(Math.max(0, options.current || 0), options.sources.length - 1)
    const source = options.sources[at]
    entry.source = source
    const poster = source.type === 'video' && source.poster ? kit.images.load(source.poster) : Promise.resolve(null)
    const main = source.type === 'video' ? loadVideo(source.url) : kit.images.load(source.url)
    Promise.all([main, poster]).then(([result, posterResult]) => {
      entry.shown = result.ok
      entry.status = result.status
      entry.type = result.type
      entry.head = result.head
      entry.posterShown = posterResult ? posterResult.ok : null
      settle(options, null, {errMsg: 'previewMedia:ok'})
    })
  }

  function saveVideoToPhotosAlbum(options) {
    kit.log.push({api: 'saveVideoToPhotosAlbum', filePath: options.filePath})
    gated('saveVideoToPhotosAlbum', options, () => {
      if (kit.ui.authSetting['scope.writePhotosAlbum'] === false) {
        return settle(options, {errMsg: 'saveVideoToPhotosAlbum:fail auth deny'})
      }
      const file = options.filePath
      if (typeof file !== 'string' || !fs.existsSync(file)) {
        return settle(options, {errMsg: 'saveVideoToPhotosAlbum:fail file not found'})
      }
      if (!SAVABLE.includes(path.extname(file).toLowerCase()) || !isBmff(file)) {
        return settle(options, {errMsg: 'saveVideoToPhotosAlbum:fail invalid video'})
      }
      const hash = crypto.createHash('sha256')
      fs.createReadStream(file).on('data', c => hash.update(c)).on('end', () => {
        kit.videoAlbum.push({sha256: hash.digest('hex'), size: fs.statSync(file).size})
        settle(options, null, {errMsg: 'saveVideoToPhotosAlbum:ok'})
      })
    })
  }

  return {loadVideo, previewMedia, saveVideoToPhotosAlbum}
}

module.exports = {makeMedia, SAVABLE}
