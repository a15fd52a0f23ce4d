// A `wx` for tests: every API the pages use, over real HTTP (node:http), a real
// WebSocket (ws) and real files, with WeChat's own rules where they bite (no PATCH,
// uploadFile succeeding on any status, callbacks always asynchronous). UI calls
// (modals, action sheets, scanning) answer from `kit.ui` and are logged in `kit.log`.
const crypto = require('crypto')
const fs = require('fs')
const http = require('http')
const path = require('path')
const WebSocket = require('ws')

const METHODS = ['OPTIONS', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'CONNECT']
const OFFLINE = 'net::ERR_INTERNET_DISCONNECTED'
// jsdom has no setImmediate; a zero timeout is just as asynchronous.
const soon = fn => setTimeout(fn, 0)

function later(fn, ...args) {
  soon(() => fn && fn(...args))
}

// success/fail/complete the way WeChat calls them: never synchronously.
function settle(options, error, result) {
  soon(() => {
    if (error) options.fail && options.fail(error)
    else options.success && options.success(result)
    options.complete && options.complete(error || result)
  })
}

function isArrayBuffer(value) {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]'
}

function toArrayBuffer(buffer) {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength)
}

function createKit({tmpDir}) {
  const storage = new Map()
  const live = new Set() // open requests and sockets, destroyed when the network is cut
  let online = true
  let tempSerial = 0
  const kit = {
    log: [],
    media: [], // what the next chooseMedia returns: [{path, width, height}]
    wechat: null, // a WeChat stand-in (kit/wechat.js) that wx.login asks for codes
    ui: {
      openid: 'o-kit-user', // whom wx.login signs in as
      uploadTaskProgress: true, // false: UploadTask.onProgressUpdate never fires
      scanResult: null,
      actionSheet: 0, // tapIndex to answer, or null to cancel
      modalConfirm: true,
      authorize: true, // what the person answers to wx.authorize
      authSetting: {},
    },
    storage,
    get online() {
      return online
    },
    // Cut the network: new calls fail, calls in flight fail now (as on a train).
    setOnline(value) {
      online = value
      if (!value) live.forEach(destroy => destroy())
    },
    beforeRequest: null, // a test's hook, e.g. to cut the network at the third chunk
    lastCall(name) {
      return kit.log.filter(e => e.api === name).pop()
    },
  }

  function tempPath(ext) {
    tempSerial += 1
    return path.join(tmpDir, `wxtmp-${process.pid}-${tempSerial}${ext || ''}`)
  }

  function track(destroy) {
    live.add(destroy)
    return () => live.delete(destroy)
  }

  // One HTTP exchange; body is a Buffer, or a function (req, done) that streams it.
  function exchange({url, method, headers, body, onResponse, fail}) {
    if (!online) return later(fail, {errMsg: OFFLINE})
    const request = http.request(url, {method, headers})
    const untrack = track(() => request.destroy(new Error(OFFLINE)))
    let failed = false
    const onError = error => {
      untrack()
      if (!failed) fail({errMsg: error.message.includes(OFFLINE) ? OFFLINE : error.message})
      failed = true
    }
    request.on('error', onError)
    request.on('response', response => {
      response.on('error', onError)
      onResponse(response, () => untrack())
    })
    if (typeof body === 'function') body(request)
    else request.end(body)
    return request
  }

  function collect(response, done) {
    const chunks = []
    response.on('data', c => chunks.push(c))
    response.on('end', () => done(Buffer.concat(chunks)))
  }

  const wx = {
    // storage -------------------------------------------------------------------
    getStorageSync: key => (storage.has(key) ? JSON.parse(storage.get(key)) : ''),
    setStorageSync: (key, value) => storage.set(key, JSON.stringify(value)),
    removeStorageSync: key => storage.delete(key),

    // network -------------------------------------------------------------------
    request(options) {
      const method = (options.method || 'GET').toUpperCase()
      kit.log.push({api: 'request', method, url: options.url, header: options.header})
      if (kit.beforeRequest) kit.beforeRequest({method, url: options.url, header: options.header || {}})
      const task = {abort() { req && req.destroy(new Error('request:fail abort')) }}
      if (!METHODS.includes(method)) {
        settle(options, {errMsg: 'request:fail method is invalid'})
        return task
      }
      const headers = Object.assign({}, options.header)
      let url = options.url
      let body
      const data = options.data
      if (method === 'GET' && data && typeof data === 'object') {
        url += (url.includes('?') ? '&' : '?') + new URLSearchParams(data).toString()
      } else if (isArrayBuffer(data)) {
        body = Buffer.from(data)
      } else if (typeof data === 'string') {
        body = Buffer.from(data)
      } else if (data !== undefined) {
        body = Buffer.from(JSON.stringify(data))
        if (!Object.keys(headers).some(k => k.toLowerCase() === 'content-type')) {
          headers['Content-Type'] = 'application/json'
        }
      }
      if (body) headers['Content-Length'] = body.length
      const req = exchange({
        url,
        method,
        headers,
        body,
        fail: error => settle(options, {errMsg: `request:fail ${error.errMsg}`}),
        onResponse(response, finish) {
          collect(response, buffer => {
            finish()
            let result = buffer.toString('utf8')
            if ((options.dataType || 'json') === 'json') {
              try { result = JSON.parse(result) } catch (e) { /* WeChat leaves it a string */ }
            }
            settle(options, null, {
              statusCode: response.statusCode,
              data: result,
              header: headerObject(response),
              errMsg: 'request:ok',
            })
          })
        },
      })
      return task
    },

    uploadFile(options) {
      kit.log.push({api: 'uploadFile', url: options.url, header: options.header})
      const listeners = []
      const task = {onProgressUpdate: fn => listeners.push(fn), abort() { req && req.destroy() }}
      const boundary = `----tubeikit${crypto.randomBytes(8).toString('hex')}`
      const size = fs.statSync(options.filePath).size
      const fields = Object.entries(options.formData || {}).map(([k, v]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')
      const head = Buffer.from(`${fields}--${boundary}\r\nContent-Disposition: form-data; ` +
        `name="${options.name}"; filename="${path.basename(options.filePath)}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n')
      const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
      const total = head.length + size + tail.length
      const headers = Object.assign({}, options.header, {
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': total,
      })
      let sent = 0
      const report = n => {
        sent += n
        if (!kit.ui.uploadTaskProgress) return
        const progress = Math.floor((sent / total) * 100)
        listeners.forEach(fn => fn({progress, totalBytesSent: sent, totalBytesExpectedToSend: total}))
      }
      const req = exchange({
        url: options.url,
        method: 'POST',
        headers,
        fail: error => settle(options, {errMsg: `uploadFile:fail ${error.errMsg}`}),
        // Stream the file in small writes so progress rises as bytes leave.
        body(request) {
          request.write(head, () => report(head.length))
          const stream = fs.createReadStream(options.filePath, {highWaterMark: 64 * 1024})
          stream.on('data', chunk => {
            if (!request.write(chunk, () => report(chunk.length))) {
              stream.pause()
              request.once('drain', () => stream.resume())
            }
          })
          stream.on('end', () => request.end(tail, () => report(tail.length)))
          request.on('close', () => stream.destroy())
        },
        onResponse(response, finish) {
          collect(response, buffer => {
            finish()
            settle(options, null, {statusCode: response.statusCode, data: buffer.toString('utf8'), errMsg: 'uploadFile:ok'})
          })
        },
      })
      return task
    },

    downloadFile(options) {
      kit.log.push({api: 'downloadFile', url: options.url, header: options.header})
      const listeners = []
      const task = {onProgressUpdate: fn => listeners.push(fn), abort() { req && req.destroy() }}
      const req = exchange({
        url: options.url,
        method: 'GET',
        headers: Object.assign({}, options.header),
        fail: error => settle(options, {errMsg: `downloadFile:fail ${error.errMsg}`}),
        onResponse(response, finish) {
          const type = response.headers['content-type'] || ''
          const file = tempPath(type.includes('png') ? '.png' : '.jpg')
          const out = fs.createWriteStream(file)
          const total = Number(response.headers['content-length']) || 0
          let written = 0
          response.on('data', chunk => {
            written += chunk.length
            const progress = total ? Math.floor((written / total) * 100) : 0
            listeners.forEach(fn => fn({progress, totalBytesWritten: written, totalBytesExpectedToWrite: total}))
          })
          response.pipe(out)
          out.on('finish', () => {
            finish()
            settle(options, null, {statusCode: response.statusCode, tempFilePath: file, errMsg: 'downloadFile:ok'})
          })
        },
      })
      return task
    },

    connectSocket(options) {
      kit.log.push({api: 'connectSocket', url: options.url})
      const handlers = {open: [], message: [], close: [], error: []}
      const fire = (name, arg) => handlers[name].forEach(fn => fn(arg))
      const task = {
        onOpen: fn => handlers.open.push(fn),
        onMessage: fn => handlers.message.push(fn),
        onClose: fn => handlers.close.push(fn),
        onError: fn => handlers.error.push(fn),
        send: ({data}) => socket && socket.readyState === WebSocket.OPEN && socket.send(data),
        close: ({code = 1000, reason} = {}) => socket && socket.close(code, reason),
      }
      let socket = null
      if (!online) {
        later(() => { fire('error', {errMsg: OFFLINE}); fire('close', {code: 1006, reason: OFFLINE}) })
        return task
      }
      socket = new WebSocket(options.url, {headers: options.header})
      const untrack = track(() => socket.terminate())
      socket.on('open', () => fire('open', {}))
      socket.on('message', data => fire('message', {data: data.toString('utf8')}))
      socket.on('error', error => fire('error', {errMsg: error.message}))
      socket.on('close', (code, reason) => { untrack(); fire('close', {code, reason: reason.toString()}) })
      kit.sockets.push(task)
      return task
    },

    // files ---------------------------------------------------------------------
    getFileSystemManager() {
      return {
        getFileInfo(options) {
          fs.readFile(options.filePath, (error, buffer) => {
            if (error) return settle(options, {errMsg: `getFileInfo:fail ${error.message}`})
            const result = {size: buffer.length, errMsg: 'getFileInfo:ok'}
            if (options.digestAlgorithm) {
              if (!kit.digests.includes(options.digestAlgorithm)) {
                return settle(options, {errMsg: 'getFileInfo:fail invalid digestAlgorithm'})
              }
              result.digest = crypto.createHash(options.digestAlgorithm).update(buffer).digest('hex')
            }
            settle(options, null, result)
          })
        },
        readFile(options) {
          fs.open(options.filePath, 'r', (error, fd) => {
            if (error) return settle(options, {errMsg: `readFile:fail ${error.message}`})
            const size = fs.fstatSync(fd).size
            const position = options.position || 0
            const length = options.length === undefined ? size - position : options.length
            const buffer = Buffer.alloc(Math.max(0, Math.min(length, size - position)))
            fs.read(fd, buffer, 0, buffer.length, position, readError => {
              fs.closeSync(fd)
              if (readError) return settle(options, {errMsg: `readFile:fail ${readError.message}`})
              const data = options.encoding ? buffer.toString(options.encoding) : toArrayBuffer(buffer)
              settle(options, null, {data, errMsg: 'readFile:ok'})
            })
          })
        },
        accessSync(filePath) {
          if (!fs.existsSync(filePath)) throw new Error(`accessSync:fail no such file or directory ${filePath}`)
        },
      }
    },

    chooseMedia(options) {
      kit.log.push({api: 'chooseMedia', options})
      if (!kit.media.length) return settle(options, {errMsg: 'chooseMedia:fail cancel'})
      const tempFiles = kit.media.splice(0, options.count || 9).map(m => ({
        tempFilePath: m.path,
        size: fs.statSync(m.path).size,
        fileType: 'image',
        width: m.width,
        height: m.height,
      }))
      settle(options, null, {tempFiles, type: 'image', errMsg: 'chooseMedia:ok'})
    },

    saveImageToPhotosAlbum(options) {
      kit.log.push({api: 'saveImageToPhotosAlbum', filePath: options.filePath})
      if (kit.ui.authSetting['scope.writePhotosAlbum'] === false) {
        return settle(options, {errMsg: 'saveImageToPhotosAlbum:fail auth deny'})
      }
      if (!fs.existsSync(options.filePath)) return settle(options, {errMsg: 'saveImageToPhotosAlbum:fail file not found'})
      kit.album.push(fs.readFileSync(options.filePath))
      settle(options, null, {errMsg: 'saveImageToPhotosAlbum:ok'})
    },
    getSetting: options => settle(options, null, {authSetting: Object.assign({}, kit.ui.authSetting)}),
    authorize(options) {
      kit.log.push({api: 'authorize', scope: options.scope})
      kit.ui.authSetting[options.scope] = kit.ui.authorize
      settle(options, kit.ui.authorize ? null : {errMsg: 'authorize:fail auth deny'}, {errMsg: 'authorize:ok'})
    },
    openSetting: options => { kit.log.push({api: 'openSetting'}); settle(options || {}, null, {authSetting: kit.ui.authSetting}) },

    // a one-time code from the WeChat stand-in (kit.wechat), as the WeChat client
    // gets one from WeChat; without one, a code no server accepts (as in DevTools
    // with touristappid)
    login(options) {
      kit.log.push({api: 'login'})
      const code = kit.wechat ? kit.wechat.issue(kit.ui.openid) : `sim-${Date.now()}`
      settle(options, null, {code, errMsg: 'login:ok'})
    },

    // ui ------------------------------------------------------------------------
    scanCode(options) {
      kit.log.push({api: 'scanCode'})
      if (kit.ui.scanResult === null) return settle(options, {errMsg: 'scanCode:fail cancel'})
      settle(options, null, {result: kit.ui.scanResult, scanType: 'QR_CODE', errMsg: 'scanCode:ok'})
    },
    showActionSheet(options) {
      kit.log.push({api: 'showActionSheet', itemList: options.itemList})
      if (kit.ui.actionSheet === null) return settle(options, {errMsg: 'showActionSheet:fail cancel'})
      settle(options, null, {tapIndex: kit.ui.actionSheet})
    },
    showModal(options) {
      kit.log.push({api: 'showModal', title: options.title, content: options.content})
      settle(options, null, {confirm: kit.ui.modalConfirm, cancel: !kit.ui.modalConfirm})
    },
    previewImage(options) {
      kit.log.push({api: 'previewImage', current: options.current, urls: options.urls})
      settle(options, null, {})
    },
    showToast(options) { kit.log.push({api: 'showToast', title: options.title}); settle(options, null, {}) },
    showLoading(options) { kit.log.push({api: 'showLoading', title: options.title}); settle(options, null, {}) },
    hideLoading(options) { settle(options || {}, null, {}) },
    stopPullDownRefresh(options) { kit.log.push({api: 'stopPullDownRefresh'}); settle(options || {}, null, {}) },
    switchTab(options) { kit.log.push({api: 'switchTab', url: options.url}); settle(options, null, {}) },
    navigateTo(options) { kit.log.push({api: 'navigateTo', url: options.url}); settle(options, null, {}) },
    getDeviceInfo: () => ({brand: 'devtools', model: 'kit phone', platform: 'devtools'}),
    getSystemInfoSync: () => ({brand: 'devtools', model: 'kit phone', SDKVersion: '3.7.12'}),
    env: {USER_DATA_PATH: tmpDir},
  }
  kit.wx = wx
  kit.sockets = []
  kit.album = []
  kit.digests = ['md5', 'sha1', 'sha256'] // drop sha256 to act as an old base library
  return kit
}

function headerObject(response) {
  // Node lowercases names; WeChat passes the server's spelling. Callers must not care.
  const header = {}
  for (let i = 0; i < response.rawHeaders.length; i += 2) {
    header[response.rawHeaders[i]] = response.rawHeaders[i + 1]
  }
  return header
}

module.exports = {createKit, METHODS}
