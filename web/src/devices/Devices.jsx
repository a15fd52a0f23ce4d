// Placeholder until the devices list lands.
import {register, t} from '../i18n.js'

register({zh: {'devices.title': '设备'}, en: {'devices.title': 'Devices'}})

export function Devices() {
  return (
    <section class="devices" aria-labelledby="devices-title">
      <h1 id="devices-title">{t('devices.title')}…</h1>
    </section>
  )
}
