// One wrapper for the JSON API: paths relative to /api/v1, the bearer token added,
// errors thrown as ApiError from the server's envelope {"error": {"code", "message"}}.
// A 401 to a request that carried a token means the device was signed out: the
// session is cleared, and the app (listening to the session) shows sign-in.
import {clearToken, getToken} from './session.js'
import {t, register} from './i18n.js'

export const API = '/api/v1'

register({
  zh: {'api.network': '无法连接服务器，请检查网络。'},
  en: {'api.network': 'Cannot reach the server; check the network.'},
})

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

async function request(method, path, {body, signal, headers = {}} = {}) {
  const token = getToken()
  const sent = {...headers}
  if (token) sent.Authorization = `Bearer ${token}`
  if (body !== undefined) sent['Content-Type'] = 'application/json'
  let response
  try {
    response = await fetch(API + path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    })
  } catch (error) {
    if (error && error.name === 'AbortError') throw error
    throw new ApiError(0, 'network', t('api.network'))
  }
  const text = await response.text()
  let data = null
  try {
    data = text ? JSON.parse(text) : null
  } catch (e) {
    data = null
  }
  if (!response.ok) {
    const error = (data && data.error) || {}
    if (response.status === 401 && token && token === getToken()) clearToken()
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || response.statusText)
  }
  return data
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options) => request('POST', path, {...options, body}),
  del: (path, options) => request('DELETE', path, options),
  request,
}
