// The trash: what was deleted, newest first (kept --trash-days days), each with
// restore, and delete for good after a confirmation. Live: a delete or restore made
// elsewhere reloads it.
import {useEffect, useLayoutEffect, useRef, useState} from 'preact/hooks'
import {api} from '../api.js'
import {subscribe} from '../events.js'
import {lang, register, t} from '../i18n.js'
import './trash.css'

register({
  zh: {
    'trash.title': '回收站',
    'trash.empty': '回收站是空的。',
    'trash.hint': '删除的照片和视频在这里保留 30 天，之后自动清除。',
    'trash.restore': '恢复 {name}',
    'trash.restore_short': '恢复',
    'trash.purge': '永久删除 {name}',
    'trash.purge_short': '永久删除',
    'trash.confirm': '永久删除“{name}”？此操作无法撤销。',
    'trash.confirm_yes': '永久删除',
    'trash.cancel': '取消',
    'trash.more': '加载更多',
    'trash.deleted_at': '删除于 {time}',
  },
  en: {
    'trash.title': 'Trash',
    'trash.empty': 'The trash is empty.',
    'trash.hint': 'Deleted photos and videos stay here for 30 days, then go for good.',
    'trash.restore': 'Restore {name}',
    'trash.restore_short': 'Restore',
    'trash.purge': 'Delete {name} for good',
    'trash.purge_short': 'Delete for good',
    'trash.confirm': 'Delete “{name}” for good? This cannot be undone.',
    'trash.confirm_yes': 'Delete for good',
    'trash.cancel': 'Cancel',
    'trash.more': 'Load more',
    'trash.deleted_at': 'Deleted {time}',
  },
})

export function Trash() {
  const [items, setItems] = useState(null)
  const [next, setNext] = useState(null)
  const [error, setError] = useState(null)
  const [asking, setAsking] = useState(null)

  const load = async cursor => {
    try {
      const page = await api.get(`/trash?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
      setItems(before => (cursor ? [...(before || []), ...page.items] : page.items))
      setNext(page.next_cursor)
      setError(null)
    } catch (e) {
      setError(e.message)
    }
  }
  useEffect(() => { load(null) }, [])
  useEffect(() => subscribe(event => {
    if (['image.added', 'image.deleted', 'image.restored', 'resync'].includes(event.type)) load(null)
  }), [])

  const act = async work => {
    try {
      await work()
      await load(null)
    } catch (e) {
      setError(e.message)
    }
  }
  const restore = image => act(() => api.post(`/trash/${image.id}/restore`))
  const purge = image => {
    setAsking(null)
    return act(() => api.del(`/trash/${image.id}`))
  }

  return (
    <section class="trash" aria-labelledby="trash-title">
      <h1 id="trash-title">{t('trash.title')}</h1>
      <p class="trash-hint">{t('trash.hint')}</p>
      {error && <p role="alert" class="trash-error">{error}</p>}
      {items && !items.length && <p class="trash-empty">{t('trash.empty')}</p>}
      {items && items.length > 0 && (
        <ul class="trash-list">
          {items.map(image => (
            <li key={image.id} class="trash-item">
              {image.signed_urls && image.signed_urls.thumbnail
                ? <img class="trash-thumb" src={image.signed_urls.thumbnail} alt="" />
                : <span class="trash-thumb" />}
              <span class="trash-name">{image.filename}
                <small>{t('trash.deleted_at', {time: when(image.deleted_at)})}</small>
              </span>
              <button type="button" class="button" onClick={() => restore(image)}
                aria-label={t('trash.restore', {name: image.filename})}>{t('trash.restore_short')}</button>
              <button type="button" class="button danger" onClick={() => setAsking(image)}
                aria-label={t('trash.purge', {name: image.filename})}>{t('trash.purge_short')}</button>
            </li>
          ))}
        </ul>
      )}
      {next && <button type="button" class="button" onClick={() => load(next)}>{t('trash.more')}</button>}
      {asking && <Confirm image={asking} onYes={() => purge(asking)} onNo={() => setAsking(null)} />}
    </section>
  )
}

function when(iso) {
  if (!iso) return ''
  return new Date(iso).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en')
}

function Confirm({image, onYes, onNo}) {
  const cancel = useRef(null)
  const no = useRef(onNo)
  no.current = onNo
  // A layout effect: the key listener is in place before the dialog is painted, so an
  // Esc pressed the moment it shows is not lost (an effect would run after the paint).
  useLayoutEffect(() => {
    const before = document.activeElement
    if (cancel.current) cancel.current.focus()
    // Esc cancels wherever the focus is: a key pressed as the dialog appears, before
    // the focus has moved into it, still reaches it.
    const onKey = event => {
      if (event.key === 'Escape') no.current()
    }
    document.addEventListener('keydown', onKey)
    return () => {
      document.removeEventListener('keydown', onKey)
      if (before && before.focus) before.focus()
    }
  }, [])
  const text = t('trash.confirm', {name: image.filename})
  return (
    <div class="confirm-backdrop">
      <div class="confirm" role="alertdialog" aria-modal="true" aria-label={text}>
        <p>{text}</p>
        <div class="confirm-actions">
          <button type="button" class="button" ref={cancel} onClick={onNo}>{t('trash.cancel')}</button>
          <button type="button" class="button danger" onClick={onYes}>{t('trash.confirm_yes')}</button>
        </div>
      </div>
    </div>
  )
}
