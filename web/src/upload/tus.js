// One file over tus, as the queue sends it: the tus-js-client Upload with Tubei's
// metadata, token and fingerprint, resumed from the URL a previous attempt stored; and
// the few tus requests the queue makes beside it (how far an upload got, give it up).
import {Upload} from 'tus-js-client'
import {getToken} from '../session.js'
import {CHUNK_SIZE, RETRY_DELAYS} from './settings.js'
import {fingerprint} from './unfinished.js'

const ENDPOINT = '/api/v1/uploads/'

export function uploadIdOf(url) {
  return url ? url.replace(/\/+$/, '').split('/').pop() : null
}

// The server's JSON error, or what the browser said.
export function explain(error) {
  const response = error && error.originalResponse
  if (response) {
    try {
      const body = JSON.parse(response.getBody() || '{}')
      if (body.error) return {code: body.error.code, message: body.error.message, status: response.getStatus()}
    } catch (e) {
      // not JSON: fall through
    }
    return {code: 'http', message: `HTTP ${response.getStatus()}`, status: response.getStatus()}
  }
  if (typeof navigator !== 'undefined' && navigator.onLine === false) return {code: 'offline', message: ''}
  return {code: 'network', message: String((error && error.message) || error || '')}
}

function tusOptions() {
  return {headers: {Authorization: `Bearer ${getToken()}`}, retryDelays: null}
}

// The tus upload of item (its file, name, type, sha256, size), not started yet.
// on: {url(url), resumed(offset), answered(method, status), progress(sent),
//      success(lastResponse), error(error)}
export function tusUpload(item, on) {
  const upload = new Upload(item.file, {
    endpoint: new URL(ENDPOINT, location.href).href,
    headers: {Authorization: `Bearer ${getToken()}`},
    metadata: {filename: item.name, filetype: item.type || 'application/octet-stream', sha256: item.sha256},
    chunkSize: CHUNK_SIZE,
    retryDelays: RETRY_DELAYS,
    // The content, not the file's name and date: a renamed copy resumes too.
    fingerprint: () => Promise.resolve(fingerprint(item.sha256, item.size)),
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onUploadUrlAvailable: () => on.url(upload.url),
    onAfterResponse: (request, response) => {
      const method = request.getMethod()
      const status = response.getStatus()
      if (method === 'HEAD' && status === 200) on.resumed(Number(response.getHeader('Upload-Offset')) || 0)
      on.answered(method, status)
    },
    onProgress: sent => on.progress(sent),
    onSuccess: ({lastResponse}) => on.success(lastResponse),
    onError: error => on.error(error),
  })
  return upload
}

// Starts upload from the newest URL stored for its file (a HEAD asks the server's
// offset), or as a new one; not at all if wanted() has turned false meanwhile.
export async function begin(upload, wanted) {
  try {
    const previous = await upload.findPreviousUploads()
    previous.sort((a, b) => new Date(b.creationTime) - new Date(a.creationTime))
    if (previous.length) upload.resumeFromPreviousUpload(previous[0])
  } catch (e) {
    // no stored URL to resume from: a new upload
  }
  if (wanted()) upload.start()
}

// Deletes an unfinished upload on the server; nothing to do if it is gone already.
export function terminate(url) {
  Upload.terminate(url, tusOptions()).catch(() => {})
}

// How many bytes the server has of the upload at url (a HEAD), or null if it cannot say.
export async function offsetOf(url) {
  try {
    const answer = await fetch(url, {
      method: 'HEAD',
      headers: {'Tus-Resumable': '1.0.0', Authorization: `Bearer ${getToken()}`},
    })
    return answer.ok ? Number(answer.headers.get('Upload-Offset')) || 0 : 0
  } catch (e) {
    return null
  }
}
