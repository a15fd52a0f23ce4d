// The library as one virtualized grid: GET /timeline gives every month's count, so the
// whole grid is laid out at once (a heading row per month, rows of square thumbnails);
// only the rows in view (and an overscan) are in the DOM, and only their chunks of
// photos are loaded (store.js). A scrubber on the side jumps to a month.
import {useEffect, useMemo, useRef, useState} from 'preact/hooks'
import {Virtualizer, elementScroll, observeElementOffset, observeElementRect} from '@tanstack/virtual-core'
import {api} from '../api.js'
import {subscribe} from '../events.js'
import {lang, register, t} from '../i18n.js'
import {CHUNK, chunksOfRow, duration, layout, monthLabel} from './layout.js'
import {Store} from './store.js'
import {Lightbox} from './Lightbox.jsx'
import './timeline.css'

register({
  zh: {
    'timeline.title': '照片',
    'timeline.empty': '还没有照片。把照片拖到这里，或用上传按钮添加。',
    'timeline.loading': '正在加载…',
    'timeline.scrubber': '按月份跳转',
    'timeline.jump': '跳到{month}',
    'timeline.count': '{count} 项',
    'timeline.video': '视频，{duration}',
    'timeline.live': '动态',
    'timeline.photo': '照片 {name}',
    'timeline.deleted': '已移到回收站',
    'timeline.undo': '撤销',
  },
  en: {
    'timeline.title': 'Photos',
    'timeline.empty': 'No photos yet. Drop photos here, or add them with the upload button.',
    'timeline.loading': 'Loading…',
    'timeline.scrubber': 'Jump to a month',
    'timeline.jump': 'Jump to {month}',
    'timeline.count': '{count} items',
    'timeline.video': 'Video, {duration}',
    'timeline.live': 'LIVE',
    'timeline.photo': 'Photo {name}',
    'timeline.deleted': 'Moved to the trash',
    'timeline.undo': 'Undo',
  },
})

const HEADING = 48
const GAP = 4
const MIN_CELL = 120

// The bench's mark: once every thumbnail of the first screen (the cells inside the
// scroll box's rect, not the overscan) has loaded, or failed, and at least one loaded.
let painted = false
function markPainted(root) {
  if (painted || !root) return
  const box = root.getBoundingClientRect()
  const images = [...root.querySelectorAll('img.thumb')].filter(img => {
    const r = img.getBoundingClientRect()
    return r.bottom > box.top && r.top < box.bottom
  })
  if (!images.length || images.some(img => !img.complete)) return
  if (!images.some(img => img.naturalWidth > 0)) return
  if (root.querySelector('.placeholder')) return
  painted = true
  performance.mark('tubei:timeline-painted')
  for (const heard of onPainted) heard()
}
// Timelines waiting for their first screen before they load beyond it.
const onPainted = new Set()
// Rows rendered beyond the screen, each way, once the first screen has loaded. Until
// then none: their thumbnails would share the browser's six connections with the
// screen the person is looking at (about a quarter of the first wave of requests).
const OVERSCAN = 2

export function Timeline() {
  const [months, setMonths] = useState(null)
  const [open, setOpen] = useState(null) // {m, k} in the lightbox
  const [toast, setToast] = useState(null) // the image just deleted, for undo
  const [error, setError] = useState(null)
  const [width, setWidth] = useState(0)
  const [, setTick] = useState(0)
  const scroller = useRef(null)
  // The first screen is in (or the person has scrolled): rows beyond it may load.
  const [beyond, setBeyond] = useState(painted)
  useEffect(() => {
    if (beyond) return undefined
    const go = () => setBeyond(true)
    onPainted.add(go)
    return () => onPainted.delete(go)
  }, [beyond])
  const storeRef = useRef(null)
  const firstPage = useRef(null)

  // first: the library's first page, asked for at the same time (on the first load).
  const reload = async (first = null) => {
    try {
      const body = await api.get('/timeline')
      firstPage.current = first
      setMonths(body.months)
      setError(null)
    } catch (e) {
      setError(e.message)
    }
  }
  useEffect(() => { reload(api.get(`/images?limit=${CHUNK}`).catch(() => null)) }, [])
  useEffect(() => {
    let timer = null
    return subscribe(event => {
      if (['image.added', 'image.deleted', 'image.restored', 'resync'].includes(event.type)) {
        clearTimeout(timer)
        timer = setTimeout(reload, 200)
      }
    })
  }, [])

  useEffect(() => {
    const element = scroller.current
    if (!element) return undefined
    const observer = new ResizeObserver(() => setWidth(element.clientWidth))
    observer.observe(element)
    setWidth(element.clientWidth)
    return () => observer.disconnect()
  }, [months !== null && months.length > 0])

  const columns = Math.max(3, Math.floor((width - 8) / MIN_CELL))
  const cell = width ? (width - 8 - GAP * (columns - 1)) / columns : MIN_CELL
  const {rows, headingRow} = useMemo(() => layout(months || [], columns), [months, columns])

  const store = useMemo(() => {
    if (storeRef.current) storeRef.current.close()
    const made = new Store(months || [], () => setTick(n => n + 1), firstPage.current)
    firstPage.current = null
    storeRef.current = made
    return made
  }, [months])

  const virtualizer = useMemo(() => new Virtualizer({
    count: 0,
    getScrollElement: () => scroller.current,
    estimateSize: () => MIN_CELL,
    observeElementRect,
    observeElementOffset,
    scrollToFn: elementScroll,
    onChange: () => setTick(n => n + 1),
  }), [])
  virtualizer.setOptions({
    ...virtualizer.options,
    count: rows.length,
    overscan: beyond ? OVERSCAN : 0,
    estimateSize: index => (rows[index].kind === 'heading' ? HEADING : cell + GAP),
  })
  useEffect(() => virtualizer._didMount(), [])
  useEffect(() => {
    virtualizer._willUpdate()
  })
  useEffect(() => { virtualizer.measure() }, [rows, cell])

  const visible = virtualizer.getVirtualItems()
  const wanted = []
  for (const item of visible) {
    const row = rows[item.index]
    for (const j of chunksOfRow(row, columns)) wanted.push([row.m, j])
  }
  useEffect(() => { store.want(wanted) })
  useEffect(() => { if (scroller.current) markPainted(scroller.current) })
  useEffect(() => () => storeRef.current && storeRef.current.close(), [])

  if (error) return <p class="timeline-error" role="alert">{error}</p>
  if (months === null) return <p class="timeline-status">{t('timeline.loading')}</p>
  if (!months.length) {
    return (
      <section class="timeline" aria-labelledby="timeline-title">
        <h1 id="timeline-title" class="visually-hidden">{t('timeline.title')}</h1>
        <p class="timeline-empty">{t('timeline.empty')}</p>
      </section>
    )
  }

  const onOpen = position => setOpen(position)
  const remove = async image => {
    try {
      await api.del(`/images/${image.id}`)
      setToast(image)
      reload()
    } catch (e) {
      setError(e.message)
    }
  }
  const undo = async () => {
    const image = toast
    setToast(null)
    try {
      await api.post(`/trash/${image.id}/restore`)
      reload()
    } catch (e) {
      setError(e.message)
    }
  }
  const jump = m => virtualizer.scrollToIndex(headingRow[m], {align: 'start'})
  return (
    <section class="timeline" aria-labelledby="timeline-title">
      <h1 id="timeline-title" class="visually-hidden">{t('timeline.title')}</h1>
      <div class="timeline-scroll" ref={scroller} onScroll={beyond ? undefined : () => setBeyond(true)}>
        <div class="timeline-space" ref={el => el && (el.style.height = `${virtualizer.getTotalSize()}px`)}>
          {visible.map(item => (
            <Row key={item.key} item={item} row={rows[item.index]} months={months}
              store={store} columns={columns} cell={cell} onOpen={onOpen} />
          ))}
        </div>
      </div>
      <Scrubber months={months} onJump={jump} />
      {open && <Lightbox position={open} version={store} at={p => store.at(p)}
        step={(p, d) => store.step(p, d)} onMove={setOpen} onClose={() => setOpen(null)}
        onDelete={remove} />}
      {toast && <Toast image={toast} onUndo={undo} onDone={() => setToast(null)} />}
    </section>
  )
}

function place(el, top, height) {
  if (!el) return
  el.style.transform = `translateY(${top}px)`
  el.style.height = `${height}px`
}

function Row({item, row, months, store, columns, cell, onOpen}) {
  const month = months[row.m]
  if (row.kind === 'heading') {
    return (
      <h2 class="timeline-heading" ref={el => place(el, item.start, HEADING)}>
        {monthLabel(month.month, lang())}
        <span class="timeline-count">{t('timeline.count', {count: month.count})}</span>
      </h2>
    )
  }
  const cells = []
  const end = Math.min(month.count, row.start + columns)
  for (let k = row.start; k < end; k += 1) {
    const chunk = store.get(row.m, Math.floor(k / CHUNK))
    const image = chunk && chunk[k % CHUNK]
    cells.push(<Cell key={image ? image.id : `p${k}`} image={image} size={cell}
      onOpen={() => onOpen({m: row.m, k})} />)
  }
  return <div class="timeline-row" ref={el => place(el, item.start, cell)}>{cells}</div>
}

const settled = event => markPainted(event.currentTarget.closest('.timeline-scroll'))

// A thumbnail whose cell leaves the DOM before it has loaded stops loading: Blink goes
// on fetching a removed <img> and keeps it (and its listeners) alive until its load or
// error, so a fast scroll through a large library would queue a request for every cell
// it passed and hold every one of those cells until the server had answered them all.
// Dropping `src` cancels the fetch and lets the element go. (A ref's cleanup, run on
// unmount; one function for every cell, so that a render does not detach it.)
const dropUnloaded = img => () => {
  if (!img.complete) img.removeAttribute('src')
}

function Cell({image, size, onOpen}) {
  const sized = el => {
    if (!el) return
    el.style.width = `${size}px`
    el.style.height = `${size}px`
  }
  if (!image) return <div class="cell placeholder" ref={sized} />
  const signed = image.signed_urls || {}
  const src = signed.thumbnail || null
  const video = image.kind === 'video'
  const live = image.kind === 'live' || image.kind === 'motion'
  const name = video ? t('timeline.video', {duration: duration(image.duration)}) : t('timeline.photo', {name: image.filename})
  return (
    <button type="button" class="cell" ref={sized} aria-label={name}
      onClick={onOpen} data-id={image.id}>
      {src ? <img class="thumb" ref={dropUnloaded} src={src} alt="" loading="eager" decoding="async" onLoad={settled} onError={settled} /> : <span class="no-thumb">{image.format}</span>}
      {video && <span class="badge">{duration(image.duration)}</span>}
      {live && <span class="badge live">{t('timeline.live')}</span>}
    </button>
  )
}

function Toast({image, onUndo, onDone}) {
  useEffect(() => {
    const timer = setTimeout(onDone, 8000)
    return () => clearTimeout(timer)
  }, [image.id])
  return (
    <div class="toast" role="status">
      <span>{t('timeline.deleted')}</span>
      <button type="button" class="button" onClick={onUndo}>{t('timeline.undo')}</button>
    </div>
  )
}

// Pressed and dragged over with a mouse or a pen, the months under the pointer are jumped
// to as it passes; a finger's drag scrolls the scrubber instead (timeline.css), and its tap
// is a click.
function Scrubber({months, onJump}) {
  const pick = event => {
    if (event.pointerType === 'touch' || !(event.buttons & 1)) return
    const target = document.elementFromPoint(event.clientX, event.clientY)
    const m = target && target.dataset ? target.dataset.m : undefined
    if (m !== undefined) onJump(Number(m))
  }
  return (
    <div class="scrubber" role="group" aria-label={t('timeline.scrubber')} onPointerMove={pick} onPointerDown={pick}>
      {months.map((month, m) => {
        const label = monthLabel(month.month, lang())
        return (
          <button key={month.month} type="button" data-m={m} onClick={() => onJump(m)}
            aria-label={t('timeline.jump', {month: label})}>
            {m === 0 || months[m - 1].month.slice(0, 4) !== month.month.slice(0, 4) ? month.month.replace('-', '.') : month.month.slice(5)}
          </button>
        )
      })}
    </div>
  )
}
