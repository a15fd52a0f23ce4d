// SHA-256 of a File, read a slice at a time (crypto.subtle is missing on a plain-http
// page, and digests only whole buffers). Messages: {id, file} in; {id, done} as it
// reads, then {id, sha256} or {id, error} out.
import {createSHA256} from 'hash-wasm'
import {HASH_SLICE} from './settings.js'

const hasher = createSHA256()

self.onmessage = async ({data: {id, file}}) => {
  try {
    const sha = await hasher
    sha.init()
    for (let offset = 0; offset < file.size; offset += HASH_SLICE) {
      const slice = await file.slice(offset, offset + HASH_SLICE).arrayBuffer()
      sha.update(new Uint8Array(slice))
      self.postMessage({id, done: Math.min(file.size, offset + HASH_SLICE)})
    }
    self.postMessage({id, sha256: sha.digest('hex')})
  } catch (error) {
    self.postMessage({id, error: String((error && error.message) || error)})
  }
}
