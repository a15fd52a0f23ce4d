// Upload a file with the official tus-js-client, as a client of Tubei's tus endpoint
// would. Driven by tests/interop/test_tus_js.py.
//
//   TUBEI_TOKEN=... node tests/interop/tus_js_upload.mjs ENDPOINT FILE CHUNK_SIZE [MODE] [FLAGS]
//
// The token comes from the environment: a token may begin with '-', which an
// argument parser would take for an option (and argv is visible to every user).
//
// MODE
//   upload             upload the whole file (the default)
//   abort-after BYTES  stop once the server has accepted at least BYTES, print the URL
//   resume URL         carry on the upload at URL (never starts a new one)
// FLAGS
//   --override-patch        send POST + X-HTTP-Method-Override: PATCH (as WeChat must)
//   --data-during-creation  send the first chunk with the creation POST
//
// Prints one JSON line: {"state": "aborted" | "done", "url", "offset", "imageId",
// "duplicate"}. Errors go to stderr with exit code 1.

import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Upload } from 'tus-js-client'

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'override-patch': { type: 'boolean', default: false },
    'data-during-creation': { type: 'boolean', default: false },
  },
})
const token = process.env.TUBEI_TOKEN
const [endpoint, file, chunkText, mode = 'upload', modeArgument] = positionals
const chunkSize = Number.parseInt(chunkText, 10)
if (!endpoint || !token || !file || !(chunkSize > 0) || !['upload', 'abort-after', 'resume'].includes(mode)) {
  process.stderr.write('usage: TUBEI_TOKEN=... tus_js_upload.mjs ENDPOINT FILE CHUNK_SIZE [upload | abort-after BYTES | resume URL] [--override-patch] [--data-during-creation]\n')
  process.exit(2)
}
const stopAfter = mode === 'abort-after' ? Number.parseInt(modeArgument, 10) : null
const size = fs.statSync(file).size

function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

const upload = new Upload(fs.createReadStream(file), {
  // Resuming must not quietly start over: no endpoint, so a lost upload is an error.
  endpoint: mode === 'resume' ? null : endpoint,
  uploadUrl: mode === 'resume' ? modeArgument : null,
  chunkSize,
  retryDelays: null,
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: path.basename(file), filetype: 'image/jpeg' },
  overridePatchMethod: flags['override-patch'],
  uploadDataDuringCreation: flags['data-during-creation'],
  storeFingerprintForResuming: false,
  onChunkComplete(_chunk, accepted, total) {
    if (stopAfter !== null && accepted >= stopAfter && accepted < total) {
      upload.abort().then(() => report({ state: 'aborted', url: upload.url, offset: accepted }))
    }
  },
  onSuccess({ lastResponse }) {
    report({
      state: 'done',
      url: upload.url,
      offset: size,
      imageId: lastResponse.getHeader('Tubei-Image-Id') ?? null,
      duplicate: lastResponse.getHeader('Tubei-Duplicate') === 'true',
    })
  },
  onError(error) {
    process.stderr.write(`tus-js-client: ${error.message}\n`)
    process.exitCode = 1
  },
})
upload.start()
