import {useState} from 'preact/hooks'
import {api} from '../api.js'
import {register, t} from '../i18n.js'
import {setToken} from '../session.js'
import {defaultDeviceName} from './device_name.js'
import icon from '../icon.svg'
import './signin.css'

register({
  zh: {
    'signin.title': '登录图备',
    'signin.lead': '输入配对码，把这个浏览器登记为你的设备。',
    'signin.code': '配对码',
    'signin.code_hint': '6 位数字。在已登录的手机上打开「设置 › 在电脑浏览器登录」，或在服务器上运行 python -m server pair。',
    'signin.device': '设备名称',
    'signin.device_hint': '在「设备」页面中显示，用来认出这个浏览器。',
    'signin.submit': '登录',
    'signin.busy': '正在登录…',
    'signin.bad_code': '配对码应为 6 位数字。',
    'signin.invalid_pairing_code': '配对码不正确或已过期，请重新获取。',
    'signin.too_many_attempts': '尝试次数过多，请稍后再试。',
  },
  en: {
    'signin.title': 'Sign in to Tubei',
    'signin.lead': 'Enter a pairing code to add this browser as one of your devices.',
    'signin.code': 'Pairing code',
    'signin.code_hint': '6 digits. On a phone that is signed in, open Settings › Sign in on a computer, or run python -m server pair on the server.',
    'signin.device': 'Device name',
    'signin.device_hint': 'Shown on the Devices page, so you can tell this browser apart.',
    'signin.submit': 'Sign in',
    'signin.busy': 'Signing in…',
    'signin.bad_code': 'The pairing code is 6 digits.',
    'signin.invalid_pairing_code': 'That pairing code is wrong or has expired; get a new one.',
    'signin.too_many_attempts': 'Too many attempts; wait a little and try again.',
  },
})

// The 6 digits of what was typed or pasted: the code itself, or a tubei://pair link.
export function codeFrom(text) {
  const fromLink = /[?&]code=(\d{6})\b/.exec(text)
  if (fromLink) return fromLink[1]
  const digits = text.replace(/\D/g, '')
  return digits.length === 6 ? digits : null
}

export function SignIn() {
  const [code, setCode] = useState('')
  const [device, setDevice] = useState(defaultDeviceName)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState('')

  async function submit(event) {
    event.preventDefault()
    const digits = codeFrom(code)
    if (!digits) {
      setError(t('signin.bad_code'))
      return
    }
    setBusy(true)
    setError('')
    try {
      const issued = await api.post('/auth/pair', {code: digits, device: device.trim()})
      setToken(issued.token, issued.user, issued.device)
    } catch (failure) {
      const known = `signin.${failure.code}`
      setError(t(known) === known ? failure.message : t(known))
      setBusy(false)
    }
  }

  return (
    <main class="signin">
      <form class="signin-card" onSubmit={submit} noValidate>
        <img class="signin-logo" src={icon} alt="" />
        <h1>{t('signin.title')}</h1>
        <p class="signin-lead">{t('signin.lead')}</p>
        <label class="field">
          <span class="field-label">{t('signin.code')}</span>
          <input
            class="signin-code"
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            autoFocus
            value={code}
            onInput={e => setCode(e.currentTarget.value)}
            aria-describedby="signin-code-hint"
            aria-invalid={error ? 'true' : undefined}
          />
          <span class="field-hint" id="signin-code-hint">{t('signin.code_hint')}</span>
        </label>
        <label class="field">
          <span class="field-label">{t('signin.device')}</span>
          <input
            name="device"
            maxLength={100}
            value={device}
            onInput={e => setDevice(e.currentTarget.value)}
            aria-describedby="signin-device-hint"
          />
          <span class="field-hint" id="signin-device-hint">{t('signin.device_hint')}</span>
        </label>
        {error && <p class="form-error" role="alert">{error}</p>}
        <button class="button primary" type="submit" disabled={busy}>
          {busy ? t('signin.busy') : t('signin.submit')}
        </button>
      </form>
    </main>
  )
}
