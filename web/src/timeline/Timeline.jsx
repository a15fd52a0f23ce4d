// Placeholder: the timeline (virtualized grid, month headings, lightbox) replaces it.
import {register, t} from '../i18n.js'

register({zh: {'timeline.title': '照片'}, en: {'timeline.title': 'Photos'}})

export function Timeline() {
  return (
    <section class="timeline" aria-labelledby="timeline-title">
      <h1 id="timeline-title">{t('timeline.title')}…</h1>
    </section>
  )
}
