// scripts/bench --only webupload: the same files uploaded by tus-js-client under Node
// and by the web app in Chromium, alternately, to one server. Driven by
// scripts/bench_web_upload.py; prints one JSON line per upload.
//
//   TUBEI_TOKEN=... node scripts/bench_web_upload.mjs SERVER_URL CHROMIUM FILES_JSON
//
// FILES_JSON: [{"kind": "node" | "browser", "path": "..."}, ...] in the order to run.
import fs from 'node:fs'
import path from 'node:path'
import {chromium} from 'playwright-core'
import {Upload} from 'tus-js-client'
import {CHUNK_SIZE, RETRY_DELAYS} from '../web/src/upload/settings.js'

const [server, executablePath, filesJson] = process.argv.slice(2)
const token = process.env.TUBEI_TOKEN
const files = JSON.parse(filesJson)

function nodeUpload(file) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const upload = new Upload(fs.createReadStream(file), {
      endpoint: `${server}/api/v1/uploads/`,
      uploadSize: fs.statSync(file).size,
      chunkSize: CHUNK_SIZE,
      retryDelays: RETRY_DELAYS,
      headers: {Authorization: `Bearer ${token}`},
      metadata: {filename: path.basename(file), filetype: 'image/jpeg'},
      storeFingerprintForResuming: false,
      onSuccess: ({lastResponse}) => {
        if (!lastResponse.getHeader('Tubei-Image-Id')) reject(new Error('no Tubei-Image-Id'))
        resolve({seconds: (performance.now() - started) / 1000})
      },
      onError: reject,
    })
    upload.start()
  })
}

const browser = await chromium.launch({executablePath, headless: true, args: ['--no-sandbox',
  '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run']})
try {
  const context = await browser.newContext({locale: 'zh-CN'})
  await context.addInitScript(value => localStorage.setItem('tubei.session', value),
    JSON.stringify({token, user: {id: 0, name: 'bench'}, device: null}))
  const page = await context.newPage()
  await page.goto(`${server}/`)
  const input = page.getByLabel('选择照片或视频')
  for (const {kind, path: file} of files) {
    const size = fs.statSync(file).size
    if (kind === 'node') {
      const {seconds} = await nodeUpload(file)
      process.stdout.write(`${JSON.stringify({kind, size, seconds})}\n`)
      continue
    }
    await input.setInputFiles(file)
    await page.locator('.uploads-queue li[data-state="stored"]', {hasText: path.basename(file)})
      .waitFor({timeout: 300000})
    const measures = await page.evaluate(name => {
      const pick = m => performance.getEntriesByName(m).filter(e => e.detail.name === name).pop().duration
      return {upload: pick('tubei.upload'), all: pick('tubei.pick-to-stored')}
    }, path.basename(file))
    process.stdout.write(`${JSON.stringify({kind, size, seconds: measures.upload / 1000,
      pickToStored: measures.all / 1000})}\n`)
    await page.getByRole('button', {name: '清除已完成'}).click()
  }
} finally {
  await browser.close()
}
