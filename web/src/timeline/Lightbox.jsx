// One photo or video over the page: ← → (and a swipe) to the previous and next one
// across months, Esc to close; a photo from its 1440 px preview (the original when it
// has none), a video playing its H.264 preview when the server made one, else the
// original; download the original; delete to the trash (the timeline offers undo).
// A small dialog of our own rather than PhotoSwipe: videos are first-class items here,
// each one needs <video> with controls, and the items come from a store of chunks
// loaded on demand, which PhotoSwipe's static data source and image-only slides fit badly.
import {useEffect, useLayoutEffect, useRef, useState} from 'preact/hooks'
import {register, t} from '../i18n.js'
import {duration} from './layout.js'
import './lightbox.css'

register({
  zh: {
    'lightbox.label': '查看 {name}',
    'lightbox.close': '关闭',
    'lightbox.prev': '上一张',
    'lightbox.next': '下一张',
    'lightbox.download': '下载原图',
    'lightbox.delete': '删除',
    'lightbox.video': '视频 {duration}',
  },
  en: {
    'lightbox.label': 'Viewing {name}',
    'lightbox.close': 'Close',
    'lightbox.prev': 'Previous',
    'lightbox.next': 'Next',
    'lightbox.download': 'Download original',
    'lightbox.delete': 'Delete',
    'lightbox.video': 'Video {duration}',
  },
})

// A key is the lightbox's unless it is typed into a field, or meant for another dialog
// (one opened over the lightbox, or beside it).
function mine(target, dialog) {
  if (!target || !target.closest) return true
  if (target.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])')) return false
  const other = target.closest('[role="dialog"], [role="alertdialog"]')
  return !other || other === dialog
}

// position: {m, k}; at(position) -> Promise<image|null>; step(position, ±1) -> position|null
export function Lightbox({position, at, step, version, onMove, onClose, onDelete}) {
  const [image, setImage] = useState(null)
  const dialog = useRef(null)
  const swipe = useRef(null)
  const shown = useRef(null) // the id of the photo on screen, for the focus on closing
  shown.current = image ? image.id : shown.current

  useEffect(() => {
    let live = true
    at(position).then(found => {
      if (!live) return
      if (found) setImage(found)
      else onClose()
    })
    return () => { live = false }
  }, [position.m, position.k, version])

  const go = delta => {
    const next = step(position, delta)
    if (next) onMove(next)
  }
  const keys = useRef(null)
  keys.current = event => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return
    if (!mine(event.target, dialog.current)) return
    if (event.key === 'Escape') onClose()
    else if (event.key === 'ArrowLeft') go(-1)
    else if (event.key === 'ArrowRight') go(1)
    else return
    event.preventDefault()
  }

  // The keys are taken on the document from the moment the dialog is in the page (a
  // layout effect, not one after paint): one pressed as it opens, before the focus has
  // moved in, still reaches it.
  useLayoutEffect(() => {
    const before = document.activeElement
    if (dialog.current) dialog.current.focus()
    const onKey = event => keys.current(event)
    document.addEventListener('keydown', onKey)
    return () => {
      document.removeEventListener('keydown', onKey)
      // Back to the cell of the photo last shown (where the person is now), else to
      // what had the focus if it is still in the page (a reload of the grid replaces
      // its cells, and the focus would otherwise be lost to the body).
      const id = shown.current
      const cell = id && document.querySelector(`.cell[data-id="${CSS.escape(id)}"]`)
      const back = cell || (before && before.isConnected ? before : null)
      if (back && back.focus) back.focus()
    }
  }, [])
  const down = event => { swipe.current = event.clientX }
  const up = event => {
    if (swipe.current === null) return
    const dx = event.clientX - swipe.current
    swipe.current = null
    if (Math.abs(dx) > 50) go(dx < 0 ? 1 : -1)
  }

  const signed = (image && image.signed_urls) || {}
  const video = image && image.kind === 'video'
  return (
    <div class="lightbox" role="dialog" aria-modal="true" tabIndex={-1} ref={dialog}
      aria-label={image ? t('lightbox.label', {name: image.filename}) : ''}
      onPointerDown={down} onPointerUp={up}>
      <div class="lightbox-stage">
        {image && (video ? (
          <video key={image.id} class="lightbox-media" controls autoplay muted playsInline
            poster={signed.preview || undefined}
            src={signed.video_preview || signed.original}
            aria-label={t('lightbox.video', {duration: duration(image.duration)})} />
        ) : (
          <img key={image.id} class="lightbox-media" src={signed.preview || signed.original} alt={image.filename} />
        ))}
      </div>
      <div class="lightbox-bar">
        <span class="lightbox-name">{image ? image.filename : ''}</span>
        {image && <a class="button" href={signed.original} download={image.filename}>{t('lightbox.download')}</a>}
        {image && <button type="button" class="button" onClick={() => onDelete(image)}>{t('lightbox.delete')}</button>}
        <button type="button" class="button" onClick={onClose}>{t('lightbox.close')}</button>
      </div>
      <button type="button" class="lightbox-nav prev" aria-label={t('lightbox.prev')} onClick={() => go(-1)}>‹</button>
      <button type="button" class="lightbox-nav next" aria-label={t('lightbox.next')} onClick={() => go(1)}>›</button>
    </div>
  )
}
