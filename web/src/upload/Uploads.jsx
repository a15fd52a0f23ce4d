// The upload panel, mounted once beside the pages: a file and a folder picker, a drop
// zone over the whole window (folders too), the queue with each file's state and
// progress, the overall progress, and the uploads a reload interrupted.
import {useEffect, useRef, useState} from 'preact/hooks'
import {t} from '../i18n.js'
import {ACCEPT, droppedFiles} from './media.js'
import {ACTIVE, uploads} from './uploader.js'
import './strings.js'
import './uploads.css'

const MAX_ROWS = 500
// A phone's screen (uploads.css's sheet): the panel starts collapsed to its head, which
// keeps the summary and the overall progress, so it covers no more of the page than that;
// open, though, when a reload left uploads unfinished, which wait for their files to be
// picked again and would go unseen in a collapsed panel.
const PHONE = '(max-width: 600px)'

export function formatBytes(n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`
  return `${(n / 1024 ** 3).toFixed(2)} GB`
}

function percent(part, whole) {
  return whole ? Math.floor((100 * part) / whole) : 0
}

function errorText(error) {
  if (!error) return ''
  const known = `upload.error.${error.code}`
  const text = t(known)
  if (text !== known) return text
  return error.message || t('upload.error.network')
}

function stateText(item) {
  switch (item.state) {
    case 'hashing':
      return t('upload.state.hashing', {pct: percent(item.hashed, item.size)})
    case 'uploading': {
      const pct = percent(Math.max(item.sent, item.received), item.size)
      return item.resumedFrom
        ? t('upload.state.resumed', {from: formatBytes(item.resumedFrom), pct})
        : t('upload.state.uploading', {pct})
    }
    case 'exists':
      return t(item.twin ? 'upload.state.twin' : 'upload.state.exists')
    case 'failed':
      return `${t('upload.state.failed')}：${errorText(item.error)}`
    default:
      return t(`upload.state.${item.state}`)
  }
}

function progressOf(item) {
  if (item.state === 'hashing') return item.hashed
  if (item.state === 'stored' || item.state === 'exists') return item.size
  return Math.max(item.sent, item.received)
}

function Row({item}) {
  const active = ACTIVE.has(item.state)
  return (
    <li class="upload-row" data-state={item.state} data-key={item.key}>
      <div class="upload-row-main">
        <span class="upload-name" title={item.path}>{item.path}</span>
        <span class="upload-size">{formatBytes(item.size)}</span>
      </div>
      {item.state !== 'skipped' && (
        <progress class="upload-bar" max={item.size || 1} value={progressOf(item)}
          aria-label={item.path} />
      )}
      <div class="upload-row-end">
        <span class="upload-state">{stateText(item)}</span>
        {(item.state === 'failed' || item.state === 'cancelled' || item.state === 'offline') && (
          <button type="button" class="button link" onClick={() => uploads.retry(item)}
            aria-label={t('upload.retry_one', {name: item.path})}>{t('upload.retry')}</button>
        )}
        {active && (
          <button type="button" class="button link danger" onClick={() => uploads.cancel(item)}
            aria-label={t('upload.cancel_one', {name: item.path})}>{t('upload.cancel')}</button>
        )}
      </div>
    </li>
  )
}

function Interrupted({entries}) {
  if (!entries.length) return null
  return (
    <section class="upload-interrupted" aria-labelledby="upload-interrupted-title">
      <h3 id="upload-interrupted-title">{t('upload.interrupted')}</h3>
      <p class="field-hint">{t('upload.interrupted_hint')}</p>
      <ul>
        {entries.map(entry => (
          <li key={entry.sha256} class="upload-row" data-state="interrupted">
            <div class="upload-row-main">
              <span class="upload-name" title={entry.path}>{entry.path}</span>
              <span class="upload-size">{formatBytes(entry.size)}</span>
            </div>
            <div class="upload-row-end">
              <span class="upload-state">
                {entry.offset != null ? t('upload.interrupted_at', {pct: percent(entry.offset, entry.size)}) : ''}
              </span>
              <button type="button" class="button link danger"
                onClick={() => uploads.abandonInterrupted(entry.sha256)}
                aria-label={t('upload.abandon_one', {name: entry.path})}>{t('upload.abandon')}</button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  )
}

// Files dragged over the window: an overlay says where they go; a drop anywhere adds them.
function useDropZone() {
  const [over, setOver] = useState(false)
  useEffect(() => {
    let depth = 0
    const hasFiles = event => [...(event.dataTransfer?.types || [])].includes('Files')
    const enter = event => {
      if (!hasFiles(event)) return
      event.preventDefault()
      depth += 1
      setOver(true)
    }
    const overIt = event => {
      if (!hasFiles(event)) return
      event.preventDefault()
      event.dataTransfer.dropEffect = 'copy'
    }
    const leave = event => {
      if (!hasFiles(event)) return
      depth = Math.max(0, depth - 1)
      if (!depth) setOver(false)
    }
    const drop = event => {
      if (!hasFiles(event)) return
      event.preventDefault()
      depth = 0
      setOver(false)
      droppedFiles(event.dataTransfer).then(files => uploads.add(files))
    }
    window.addEventListener('dragenter', enter)
    window.addEventListener('dragover', overIt)
    window.addEventListener('dragleave', leave)
    window.addEventListener('drop', drop)
    return () => {
      window.removeEventListener('dragenter', enter)
      window.removeEventListener('dragover', overIt)
      window.removeEventListener('dragleave', leave)
      window.removeEventListener('drop', drop)
    }
  }, [])
  return over
}

export function Uploads() {
  const [, setTick] = useState(0)
  const [open, setOpen] = useState(() => !window.matchMedia(PHONE).matches || uploads.interrupted.length > 0)
  const over = useDropZone()
  const filesInput = useRef(null)
  const folderInput = useRef(null)
  useEffect(() => {
    const stop = uploads.listen(() => setTick(n => n + 1))
    uploads.describeInterrupted()
    return stop
  }, [])
  useEffect(() => {
    // webkitdirectory is not a property Preact sets from JSX everywhere: set it here.
    if (folderInput.current) folderInput.current.webkitdirectory = true
  })

  const picked = event => {
    uploads.add([...event.currentTarget.files])
    event.currentTarget.value = '' // the same files can be picked again
  }
  const summary = uploads.summary()
  const items = uploads.items
  const shown = items.slice(0, MAX_ROWS)
  const failed = summary.states.failed || 0

  return (
    <aside class={`uploads${open ? ' open' : ''}`} aria-labelledby="uploads-title">
      <div class="uploads-head">
        <h2 id="uploads-title">{t('upload.title')}</h2>
        {summary.files > 0 && (
          <span class="uploads-summary" aria-live="polite">{t('upload.summary', {
            settled: summary.settled,
            files: summary.files,
            done: formatBytes(summary.done),
            bytes: formatBytes(summary.bytes),
          })}</span>
        )}
        {!open && uploads.interrupted.length > 0 && (
          <span class="uploads-unfinished">{t('upload.unfinished', {count: uploads.interrupted.length})}</span>
        )}
        <button type="button" class="button link uploads-toggle" aria-expanded={open ? 'true' : 'false'}
          aria-controls="uploads-body" onClick={() => setOpen(!open)}
          aria-label={t(open ? 'upload.collapse' : 'upload.expand')}>{open ? '▾' : '▴'}</button>
      </div>
      {summary.files > 0 && (
        <progress class="uploads-overall" max={summary.bytes || 1} value={summary.done}
          aria-label={t('upload.overall')} />
      )}
      <div id="uploads-body" class="uploads-body" hidden={!open}>
        <div class="uploads-pickers">
          <input id="upload-files" ref={filesInput} class="visually-hidden" type="file" multiple
            accept={ACCEPT} onChange={picked} />
          <label for="upload-files" class="button primary">{t('upload.pick_files')}</label>
          <input id="upload-folder" ref={folderInput} class="visually-hidden" type="file" multiple
            webkitdirectory="" onChange={picked} />
          <label for="upload-folder" class="button">{t('upload.pick_folder')}</label>
        </div>
        {!items.length && <p class="field-hint">{t('upload.hint')}</p>}
        <Interrupted entries={uploads.interrupted} />
        {items.length > 0 && (
          <div class="uploads-actions">
            {failed > 0 && (
              <button type="button" class="button" onClick={() => uploads.retryFailed()}>
                {t('upload.retry_failed')}
              </button>
            )}
            {summary.active > 0 && (
              <button type="button" class="button danger" onClick={() => uploads.cancelAll()}>
                {t('upload.cancel_all')}
              </button>
            )}
            {summary.settled > failed && (
              <button type="button" class="button" onClick={() => uploads.clearSettled()}>
                {t('upload.clear')}
              </button>
            )}
          </div>
        )}
        {items.length > 0 && (
          <ul class="uploads-queue" aria-label={t('upload.queue')}>
            {shown.map(item => <Row key={item.key} item={item} />)}
          </ul>
        )}
        {items.length > MAX_ROWS && (
          <p class="field-hint">{t('upload.more', {count: items.length - MAX_ROWS})}</p>
        )}
      </div>
      {over && <div class="upload-drop" aria-hidden="true"><p>{t('upload.drop')}</p></div>}
    </aside>
  )
}
