// The kit's network: wx.request, uploadFile, downloadFile and connectSocket over real
// HTTP and WebSocket, after kit/wx.js's `refused` (URL policy, limits, suspension).
const crypto = require('crypto')
const fs = require('fs')
const http = require('http')
const path = require('path')
const WebSocket = require('ws')

const METHODS = ['OPTIONS', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'CONNECT']
const OFFLINE = 'net::ERR_INTERNET_DISCONNECTED'
const MAX_DOWNLOAD = 200 * 1024 * 1024 // wx.downloadFile's limit
// A downloaded temp file is named by what the server says it is.
const EXTENSIONS = {'image/png': '.png', 'video/mp4': '.mp4', 'video/quicktime': '.mov',
  'video/webm': '.webm', 'video/3gpp': '.3gp'}

function extensionOf(type) {
  return EXTENSIONS[type.split(';')[0].trim().toLowerCase()] || '.jpg'
}

function isArrayBuffer(value) {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]'
}

function headerObject(response) {
  // Node lowercases names; WeChat passes the server's spelling. Callers must not care.
  const header = {}
  for (let i = 0; i < response.rawHeaders.length; i += 2) {
    header[response.rawHeaders[i]] = response.rawHeaders[i + 1]
  }
  return header
}


// kit; live: the set of work in flight; settle/deliver: kit/wx.js's callbacks;
// refused(api, url): why WeChat would fail the call now, or null.
function makeNet({kit, live, settle, deliver, refused, files, isOnline}) {
  // One HTTP exchange; body is a Buffer, or a function (req) that streams it.
  function exchange({url, method, headers, body, onResponse, fail}) {
    if (!isOnline()) return deliver(() => fail(OFFLINE))
    kit.sent += 1
    // A connection per exchange: a kept-alive one the server is closing for idleness
    // (--header-timeout) would fail a request that was never read.
    const request = http.request(url, {method, headers, agent: false})
    let failed = false
    const work = {
      kind: 'task',
      url,
      method,
      abort(reason, {silent = false} = {}) {
        live.delete(work)
        if (!failed && !silent) deliver(() => fail(reason))
        failed = true
        request.destroy()
      },
    }
    // Still writing its body (end() not yet called): a throttled body takes a while.
    work.sending = Boolean(body)
    const end = request.end
    request.end = function (...args) {
      work.sending = false
      return end.apply(this, args)
    }
    live.add(work)
    const onError = error => {
      if (failed) return
      failed = true
      live.delete(work)
      deliver(() => fail(error.message))
    }
    request.on('error', onError)
    request.on('response', response => {
      response.on('error', onError)
      response.on('data', chunk => { kit.received += chunk.length })
      onResponse(response, () => live.delete(work), () => failed)
    })
    if (typeof body === 'function') body(request)
    else if (body && kit.uplink) trickle(request, body)
    else request.end(body)
    return work
  }

  // A body sent at kit.uplink bytes per second, in 16 KB writes.
  function trickle(request, body, at = 0) {
    if (request.destroyed) return
    const slice = body.subarray(at, at + 16 * 1024)
    if (at + slice.length >= body.length) return request.end(slice)
    request.write(slice)
    setTimeout(() => trickle(request, body, at + slice.length), (slice.length / kit.uplink) * 1000)
  }

  function collect(response, done) {
    const chunks = []
    response.on('data', c => chunks.push(c))
    response.on('end', () => done(Buffer.concat(chunks)))
  }


  return {
    request(options) {
      const method = (options.method || 'GET').toUpperCase()
      kit.log.push({api: 'request', method, url: options.url, header: options.header})
      if (kit.beforeRequest) kit.beforeRequest({method, url: options.url, header: options.header || {}})
      let work = null
      const task = {abort() { work && work.abort('abort') }}
      if (!METHODS.includes(method)) {
        settle(options, {errMsg: 'request:fail method is invalid'})
        return task
      }
      const reason = refused('request', options.url)
      if (reason) {
        settle(options, {errMsg: `request:fail ${reason}`})
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
      work = exchange({
        url,
        method,
        headers,
        body,
        fail: reason => settle(options, {errMsg: `request:fail ${reason}`}),
        onResponse(response, finish, aborted) {
          collect(response, buffer => {
            finish()
            if (aborted()) return
            let result = buffer.toString('utf8')
            // a test's stand-in for an older server: what its answer would have been
            if (kit.rewriteAnswer) result = kit.rewriteAnswer(options.url, result)
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
      kit.log.push({api: 'uploadFile', url: options.url, header: options.header, filePath: options.filePath})
      const listeners = []
      let work = null
      const task = {onProgressUpdate: fn => listeners.push(fn), abort() { work && work.abort('abort') }}
      const reason = refused('uploadFile', options.url)
      if (reason) {
        settle(options, {errMsg: `uploadFile:fail ${reason}`})
        return task
      }
      const boundary = `----tubeikit${crypto.randomBytes(8).toString('hex')}`
      const size = fs.statSync(options.filePath).size
      const fields = Object.entries(options.formData || {}).map(([k, v]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')
      // WeChat names the part after the file it sends.
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
        if (!kit.ui.uploadTaskProgress || kit.state === 'suspended') return
        const progress = Math.floor((sent / total) * 100)
        listeners.forEach(fn => fn({progress, totalBytesSent: sent, totalBytesExpectedToSend: total}))
      }
      work = exchange({
        url: options.url,
        method: 'POST',
        headers,
        fail: reason => settle(options, {errMsg: `uploadFile:fail ${reason}`}),
        // Stream the file in small writes so progress rises as bytes leave.
        body(request) {
          request.write(head, () => report(head.length))
          const stream = fs.createReadStream(options.filePath, {highWaterMark: 64 * 1024})
          stream.on('data', chunk => {
            const full = !request.write(chunk, () => report(chunk.length))
            if (!full && !kit.uplink) return
            stream.pause()
            const resume = () => (kit.uplink ? setTimeout(() => stream.resume(), (chunk.length / kit.uplink) * 1000) : stream.resume())
            if (full) request.once('drain', resume)
            else resume()
          })
          stream.on('end', () => request.end(tail, () => report(tail.length)))
          // A file gone before or while it is read fails the call (once: a failure
          // already delivered, such as going offline, is not told twice).
          stream.on('error', error => request.destroy(error))
          request.on('close', () => stream.destroy())
        },
        onResponse(response, finish, aborted) {
          collect(response, buffer => {
            finish()
            if (aborted()) return
            settle(options, null, {statusCode: response.statusCode, data: buffer.toString('utf8'), errMsg: 'uploadFile:ok'})
          })
        },
      })
      return task
    },

    downloadFile(options) {
      kit.log.push({api: 'downloadFile', url: options.url, header: options.header})
      const listeners = []
      let work = null
      const task = {onProgressUpdate: fn => listeners.push(fn), abort() { work && work.abort('abort') }}
      const reason = refused('downloadFile', options.url)
      if (reason) {
        settle(options, {errMsg: `downloadFile:fail ${reason}`})
        return task
      }
      work = exchange({
        url: options.url,
        method: 'GET',
        headers: Object.assign({}, options.header),
        fail: reason => settle(options, {errMsg: `downloadFile:fail ${reason}`}),
        onResponse(response, finish, aborted) {
          const total = Number(response.headers['content-length']) || 0
          // WeChat refuses a download over 200 MB.
          if (total > MAX_DOWNLOAD) {
            finish()
            response.destroy()
            return settle(options, {errMsg: 'downloadFile:fail exceed max file size'})
          }
          let file
          if (options.filePath) {
            // A path of the mini-program's own (the user data folder), within its budget.
            if (!files.inUserData(options.filePath)) {
              finish()
              response.destroy()
              return settle(options, {errMsg: `downloadFile:fail permission denied, open ${options.filePath}`})
            }
            if (files.folderBytes(files.userDir) + total > kit.limits.userData) {
              finish()
              response.destroy()
              return settle(options, {errMsg: 'downloadFile:fail the maximum size of the file storage limit is exceeded'})
            }
            file = options.filePath
          } else {
            file = files.tempPath(extensionOf(response.headers['content-type'] || ''))
          }
          const out = fs.createWriteStream(file)
          let written = 0
          response.on('data', chunk => {
            written += chunk.length
            const progress = total ? Math.floor((written / total) * 100) : 0
            listeners.forEach(fn => fn({progress, totalBytesWritten: written, totalBytesExpectedToWrite: total}))
          })
          response.pipe(out)
          out.on('finish', () => {
            finish()
            if (aborted()) return
            const result = {statusCode: response.statusCode, errMsg: 'downloadFile:ok'}
            if (options.filePath) result.filePath = file
            else result.tempFilePath = file
            settle(options, null, result)
          })
        },
      })
      return task
    },

    connectSocket(options) {
      kit.log.push({api: 'connectSocket', url: options.url})
      const handlers = {open: [], message: [], close: [], error: []}
      const fire = (name, arg) => deliver(() => handlers[name].forEach(fn => fn(arg)))
      let socket = null
      let closed = false
      const task = {
        onOpen: fn => handlers.open.push(fn),
        onMessage: fn => handlers.message.push(fn),
        onClose: fn => handlers.close.push(fn),
        onError: fn => handlers.error.push(fn),
        send: ({data}) => socket && socket.readyState === WebSocket.OPEN && socket.send(data),
        close: ({code = 1000, reason} = {}) => socket && socket.close(code, reason),
      }
      const reason = isOnline() ? refused('socket', options.url) : OFFLINE
      if (reason) {
        fire('error', {errMsg: `connectSocket:fail ${reason}`})
        fire('close', {code: 1006, reason})
        return task
      }
      kit.sent += 1
      socket = new WebSocket(options.url, {headers: options.header})
      const work = {
        kind: 'socket',
        abort(why, {silent = false} = {}) {
          live.delete(work)
          if (!closed && !silent) {
            fire('error', {errMsg: why})
            fire('close', {code: 1006, reason: why})
          }
          closed = true
          socket.terminate()
        },
      }
      live.add(work)
      socket.on('open', () => fire('open', {}))
      socket.on('message', data => {
        const text = data.toString('utf8')
        fire('message', {data: kit.rewriteAnswer ? kit.rewriteAnswer(options.url, text) : text})
      })
      socket.on('error', error => { if (!closed) fire('error', {errMsg: error.message}) })
      socket.on('close', (code, why) => {
        live.delete(work)
        if (closed) return
        closed = true
        fire('close', {code, reason: why.toString()})
      })
      kit.sockets.push(task)
      return task
    },

  }
}

module.exports = {makeNet, METHODS, OFFLINE, MAX_DOWNLOAD}
