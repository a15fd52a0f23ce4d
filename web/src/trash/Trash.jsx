// Placeholder: the trash (deleted photos, restore) replaces it.
import {register, t} from '../i18n.js'

register({zh: {'trash.title': '回收站'}, en: {'trash.title': 'Trash'}})

export function Trash() {
  return (
    <section class="trash" aria-labelledby="trash-title">
      <h1 id="trash-title">{t('trash.title')}…</h1>
    </section>
  )
}
