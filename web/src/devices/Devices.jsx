// This user's devices (phones, browsers): which is this one, when each was last seen,
// and signing another out (DELETE /devices/{id}), after a confirmation. The list
// follows `device.revoked` events live; this browser's own revocation is handled by
// the app (events.js and app.jsx send it to sign-in).
import {useEffect, useState} from 'preact/hooks'
import {api} from '../api.js'
import {subscribe} from '../events.js'
import {lang, register, t} from '../i18n.js'
import './devices.css'

register({
  zh: {
    'devices.title': '设备',
    'devices.lead': '已登录你的账号的手机和浏览器。让丢失或不再使用的设备退出登录，它的访问权限会立即失效。',
    'devices.loading': '正在加载…',
    'devices.this': '本设备',
    'devices.created': '登录于 {when}',
    'devices.seen': '最近使用 {when}',
    'devices.never': '尚未使用',
    'devices.signout': '退出登录',
    'devices.confirm': '让「{name}」退出登录？它需要重新配对才能再次使用。',
    'devices.confirm_yes': '确定退出',
    'devices.cancel': '取消',
    'devices.failed': '操作失败：{message}',
    'devices.retry': '重试',
  },
  en: {
    'devices.title': 'Devices',
    'devices.lead': 'Phones and browsers signed in to your account. Sign out one that is lost or no longer used: its access ends at once.',
    'devices.loading': 'Loading…',
    'devices.this': 'This device',
    'devices.created': 'Signed in {when}',
    'devices.seen': 'Last used {when}',
    'devices.never': 'Not used yet',
    'devices.signout': 'Sign out',
    'devices.confirm': 'Sign “{name}” out? It will need a new pairing to be used again.',
    'devices.confirm_yes': 'Sign out',
    'devices.cancel': 'Cancel',
    'devices.failed': 'That did not work: {message}',
    'devices.retry': 'Retry',
  },
})

function when(iso) {
  if (!iso) return ''
  const date = new Date(iso)
  return date.toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en', {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  })
}

function DeviceRow({device, onSignOut}) {
  const [asking, setAsking] = useState(false)
  const [busy, setBusy] = useState(false)
  const confirm = async () => {
    setBusy(true)
    try {
      await onSignOut(device)
    } finally {
      setBusy(false)
      setAsking(false)
    }
  }
  return (
    <li class={device.current ? 'device current' : 'device'} aria-current={device.current ? 'true' : undefined}>
      <div class="device-main">
        <span class="device-name">{device.name}</span>
        {device.current && <span class="badge">{t('devices.this')}</span>}
        <span class="device-meta">
          {t('devices.created', {when: when(device.created_at)})}
          {' · '}
          {device.last_seen_at ? t('devices.seen', {when: when(device.last_seen_at)}) : t('devices.never')}
        </span>
      </div>
      {!device.current && !asking && (
        <button class="button danger" type="button" onClick={() => setAsking(true)}
          aria-label={`${t('devices.signout')}: ${device.name}`}>{t('devices.signout')}</button>
      )}
      {asking && (
        <div class="device-confirm" role="alertdialog" aria-label={t('devices.confirm', {name: device.name})}>
          <p>{t('devices.confirm', {name: device.name})}</p>
          <div class="device-confirm-actions">
            <button class="button" type="button" onClick={() => setAsking(false)} disabled={busy}>
              {t('devices.cancel')}
            </button>
            <button class="button danger primary" type="button" onClick={confirm} disabled={busy} autoFocus>
              {t('devices.confirm_yes')}
            </button>
          </div>
        </div>
      )}
    </li>
  )
}

export function Devices() {
  const [devices, setDevices] = useState(null)
  const [error, setError] = useState('')

  const load = async signal => {
    try {
      const body = await api.get('/devices', {signal})
      setDevices(body.items)
      setError('')
    } catch (failure) {
      if (failure.name !== 'AbortError') setError(failure.message)
    }
  }

  useEffect(() => {
    const controller = new AbortController()
    load(controller.signal)
    const stop = subscribe(event => {
      if (event.type === 'device.revoked') {
        setDevices(list => (list ? list.filter(d => d.id !== event.device_id) : list))
      } else if (event.type === 'resync') {
        load()
      }
    })
    return () => {
      controller.abort()
      stop()
    }
  }, [])

  const signOut = async device => {
    try {
      await api.del(`/devices/${device.id}`)
      setDevices(list => list.filter(d => d.id !== device.id))
    } catch (failure) {
      if (failure.status === 404) setDevices(list => list.filter(d => d.id !== device.id))
      else setError(failure.message)
    }
  }

  return (
    <section class="devices" aria-labelledby="devices-title">
      <h1 id="devices-title">{t('devices.title')}</h1>
      <p class="devices-lead">{t('devices.lead')}</p>
      {error && (
        <p class="form-error" role="alert">
          {t('devices.failed', {message: error})}{' '}
          <button class="button link" type="button" onClick={() => load()}>{t('devices.retry')}</button>
        </p>
      )}
      {devices === null && !error && <p class="empty">{t('devices.loading')}</p>}
      {devices && (
        <ul class="device-list" aria-label={t('devices.title')}>
          {devices.map(device => <DeviceRow key={device.id} device={device} onSignOut={signOut} />)}
        </ul>
      )}
    </section>
  )
}
