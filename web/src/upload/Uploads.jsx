// Placeholder: the global upload panel (file and folder pickers, the drop zone over
// the whole window, per-file and overall progress) replaces it. The app mounts it once,
// outside the pages, so that it lives while one moves between them.
import {register, t} from '../i18n.js'

register({zh: {'upload.title': '上传'}, en: {'upload.title': 'Upload'}})

export function Uploads() {
  return (
    <aside class="uploads" aria-labelledby="uploads-title">
      <h2 id="uploads-title">{t('upload.title')}…</h2>
    </aside>
  )
}
