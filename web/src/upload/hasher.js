// A few hashing workers and a queue in front of them: hash(file, onProgress) resolves
// to the file's SHA-256 (hex); at most HASHERS files are read at once.
import {HASHERS} from './settings.js'

const waiting = []
const idle = []
let made = 0
let serial = 0

function spawn() {
  const worker = new Worker(new URL('./hash.worker.js', import.meta.url), {type: 'module'})
  worker.jobs = new Map()
  worker.onmessage = ({data}) => {
    const job = worker.jobs.get(data.id)
    if (!job) return
    if (data.done !== undefined) return job.onProgress(data.done)
    worker.jobs.delete(data.id)
    if (data.error) job.reject(new Error(data.error))
    else job.resolve(data.sha256)
    release(worker)
  }
  worker.onerror = event => {
    event.preventDefault()
    for (const job of worker.jobs.values()) job.reject(new Error(event.message || 'hash worker failed'))
    worker.jobs.clear()
    worker.terminate()
    made -= 1
    pump()
  }
  made += 1
  return worker
}

function release(worker) {
  idle.push(worker)
  pump()
}

function pump() {
  while (waiting.length) {
    const job = waiting[0]
    if (job.cancelled) {
      waiting.shift()
      job.reject(new Error('cancelled'))
      continue
    }
    const worker = idle.pop() || (made < HASHERS ? spawn() : null)
    if (!worker) return
    waiting.shift()
    worker.jobs.set(job.id, job)
    worker.postMessage({id: job.id, file: job.file})
  }
}

// Returns {promise, cancel}: cancel drops a file that has not started hashing yet.
export function hash(file, onProgress = () => {}) {
  let job
  const promise = new Promise((resolve, reject) => {
    serial += 1
    job = {id: serial, file, onProgress, resolve, reject, cancelled: false}
  })
  waiting.push(job)
  pump()
  return {promise, cancel: () => { job.cancelled = true; pump() }}
}
