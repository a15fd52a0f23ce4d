// The one way the mini-program talks HTTP to the Tubei server: base URL and token
// from storage, a shared limit on requests in flight, and errors turned into short
// Chinese sentences a person can act on — keeping WeChat's own cause in them.
const {explain} = require('./wxerror')

const KEY_SERVER = 'tubei.server'
const KEY_TOKEN = 'tubei.token'

// WeChat allows 10 concurrent request/uploadFile/downloadFile calls; above that it
// fails them, so every call waits for a slot here.
const MAX_IN_FLIGHT = 10

const MESSAGES = {
  unauthorized: '未配对或配对已失效，请重新配对',
  invalid_pairing_code: '配对码不对，或已使用、已过期',
  too_many_attempts: '尝试次数太多，请稍后再试',
  too_many_pairing_codes: '已有 3 个配对码等待使用，请先用掉或等它们过期（10 分钟）',
  image_not_found: '这张照片已不在图库中',
  no_thumbnail: '这张照片无法生成缩略图，原图仍然保存着',
  payload_too_large: '文件太大，服务器不接收',
  unsupported_media_type: '不是图备支持的图片格式',
  empty_file: '文件是空的',
  upload_interrupted: '上传中断了，请重试',
  insufficient_storage: '服务器磁盘已满',
  internal_error: '服务器出错了，请稍后再试',
  invalid_argument: '请求参数有误',
  not_found: '服务器上没有这个地址，请检查服务器版本',
  invalid_wechat_code: '微信登录已失效，请再试一次',
  wechat_unavailable: '暂时连不上微信，请稍后再试',
  wechat_rate_limited: '微信登录太频繁，请稍后再试',
  wechat_login_disabled: '这台服务器没有开启微信登录',
  wechat_login_refused: '微信拒绝了这次登录',
  image_damaged: '这张照片的原图已损坏，请从手机重新备份',
}
const UNREACHABLE = '无法连接服务器'
// wx.downloadFile writes an error body to a temp file instead of handing it back:
// its answer is known by status alone.
const BY_STATUS = {401: 'unauthorized', 404: 'image_not_found', 410: 'image_damaged'}

class ApiError extends Error {
  constructor(message, {code = 'error', status = 0} = {}) {
    super(message)
    this.code = code
    this.status = status
  }
}

function serverUrl() {
  return (wx.getStorageSync(KEY_SERVER) || '').replace(/\/+$/, '')
}

function token() {
  return wx.getStorageSync(KEY_TOKEN) || ''
}

function isPaired() {
  return Boolean(serverUrl() && token())
}

function setServer(url) {
  wx.setStorageSync(KEY_SERVER, normalizeServer(url))
}

function setToken(value) {
  if (value) wx.setStorageSync(KEY_TOKEN, value)
  else wx.removeStorageSync(KEY_TOKEN)
}

// Addresses WeChat lets a mini-program reach over plain http: an IP on the phone's
// own network. Those are private (RFC 1918, link-local; loopback for DevTools).
function isPrivateIp(host) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  if (!m) return false
  const [a, b] = [Number(m[1]), Number(m[2])]
  if (m.slice(1).some(x => Number(x) > 255)) return false
  return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
    (a === 169 && b === 254)
}

function hostOf(url) {
  const m = /^[a-z]+:\/\/([^/:?#]+)/i.exec(url)
  return m ? m[1].toLowerCase() : ''
}

// A typed address as WeChat can reach it: http only for a private IP (the LAN rule),
// https for everything else (a registered domain). {url} or {error}.
function parseServer(text) {
  let value = String(text || '').trim().replace(/\/+$/, '')
  if (!value) return {error: '请填写服务器地址'}
  const scheme = /^([a-z]+):\/\//i.exec(value)
  if (scheme && !/^https?$/i.test(scheme[1])) return {error: '地址要以 http:// 或 https:// 开头'}
  const host = hostOf(scheme ? value : `http://${value}`)
  if (!host) return {error: '这不是一个服务器地址'}
  if (!scheme) value = `${isPrivateIp(host) ? 'http' : 'https'}://${value}`
  if (/^http:/i.test(value) && !isPrivateIp(host)) {
    return {error: '外网地址必须用 https：微信只允许对局域网 IP 使用 http。请填写 https:// 开头的域名。'}
  }
  return {url: value}
}

// People type "192.168.1.5:8000"; WeChat needs a scheme.
function normalizeServer(url) {
  return parseServer(url).url || ''
}

function url(path) {
  return /^https?:\/\//i.test(path) ? path : serverUrl() + path
}

function authHeader(extra) {
  const header = Object.assign({}, extra)
  const value = token()
  if (value) header.Authorization = `Bearer ${value}`
  return header
}

// A semaphore shared by request, upload and download.
let inFlight = 0
const waiting = []
function acquire() {
  if (inFlight < MAX_IN_FLIGHT) {
    inFlight += 1
    return Promise.resolve()
  }
  return new Promise(resolve => waiting.push(resolve))
}
function release() {
  const next = waiting.shift()
  if (next) next()
  else inFlight -= 1
}
function withSlot(start) {
  return acquire().then(() => new Promise(start)).then(
    value => { release(); return value },
    error => { release(); throw error }
  )
}
function stats() {
  return {inFlight, waiting: waiting.length}
}

function parseBody(data) {
  if (typeof data !== 'string') return data
  try {
    return JSON.parse(data)
  } catch (e) {
    return data
  }
}

function messageFor(code) {
  return MESSAGES[code] || ''
}

// Any non-2xx answer becomes an ApiError with the server's code and our sentence.
function toError(statusCode, data) {
  const body = parseBody(data)
  const error = body && body.error
  const code = (error && error.code) || BY_STATUS[statusCode] || `http_${statusCode}`
  const message = MESSAGES[code] || `请求失败（${statusCode}）`
  return new ApiError(message, {code, status: statusCode})
}

// A call that never reached the server: WeChat's cause (errMsg, errno) is kept, and
// the sentence says what to do about it.
function networkError(err) {
  const {code, message} = explain(err)
  const error = new ApiError(message, {code, status: 0})
  error.detail = (err && err.errMsg) || ''
  error.errno = err && err.errno
  return error
}

// request({path, method, data, header, raw}) -> the JSON body, or {statusCode, data,
// header} when raw is set (tus reads response headers).
function request({path, method = 'GET', data, header, raw = false, timeout}) {
  return withSlot((resolve, reject) => {
    wx.request({
      url: url(path),
      method,
      data,
      timeout,
      header: authHeader(header),
      success(res) {
        if (res.statusCode >= 200 && res.statusCode < 300) {
          resolve(raw ? res : res.data)
        } else {
          reject(toError(res.statusCode, res.data))
        }
      },
      fail(err) {
        reject(networkError(err))
      },
    })
  })
}

// upload({path, filePath, name, header, onProgress}) -> the JSON body. onTask gets
// the UploadTask so a caller can abort it.
function upload({path, filePath, name = 'photo', header, onProgress, onTask}) {
  return withSlot((resolve, reject) => {
    const task = wx.uploadFile({
      url: url(path),
      filePath,
      name,
      header: authHeader(header),
      success(res) {
        // uploadFile succeeds for any HTTP status: the status decides.
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(parseBody(res.data))
        else reject(toError(res.statusCode, res.data))
      },
      fail(err) {
        reject(networkError(err))
      },
    })
    if (task && onProgress) task.onProgressUpdate(onProgress)
    if (task && onTask) onTask(task)
  })
}

// download({path, header, onProgress}) -> the temp file path.
// filePath: where to keep it (the user data folder) rather than a temp file.
function download({path, header, onProgress, filePath}) {
  return withSlot((resolve, reject) => {
    const task = wx.downloadFile(Object.assign({
      url: url(path),
      header: authHeader(header),
    }, filePath ? {filePath} : {}, {
      success(res) {
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(res.filePath || res.tempFilePath)
        else reject(toError(res.statusCode, ''))
      },
      fail(err) {
        reject(networkError(err))
      },
    }))
    if (task && onProgress) task.onProgressUpdate(onProgress)
  })
}

module.exports = {
  ApiError,
  messageFor,
  networkError,
  parseServer,
  isPrivateIp,
  UNREACHABLE,
  KEY_SERVER,
  KEY_TOKEN,
  MAX_IN_FLIGHT,
  serverUrl,
  token,
  isPaired,
  setServer,
  setToken,
  normalizeServer,
  url,
  request,
  upload,
  download,
  stats,
}
