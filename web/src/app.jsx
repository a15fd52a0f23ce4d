// The app: sign-in while there is no session; otherwise the top bar, the page of the
// hash route (#/ timeline, #/trash, #/devices) and the global upload panel, which
// stays mounted across pages so uploads go on while one browses.
import {useEffect, useState} from 'preact/hooks'
import {api} from './api.js'
import {subscribe} from './events.js'
import {lang, register, setLang, t} from './i18n.js'
import {href, useRoute} from './router.js'
import {clearToken, getSession, onSessionChange} from './session.js'
import {SignIn} from './signin/SignIn.jsx'
import {Devices} from './devices/Devices.jsx'
import {Timeline} from './timeline/Timeline.jsx'
import {Trash} from './trash/Trash.jsx'
import {Uploads} from './upload/Uploads.jsx'
import icon from './icon.svg'
import './app.css'

register({
  zh: {
    'app.name': '图备',
    'app.nav': '主导航',
    'app.timeline': '照片',
    'app.trash': '回收站',
    'app.devices': '设备',
    'app.signout': '退出登录',
    'app.language': 'English',
    'app.language_label': '切换到英文',
  },
  en: {
    'app.name': 'Tubei',
    'app.nav': 'Main',
    'app.timeline': 'Photos',
    'app.trash': 'Trash',
    'app.devices': 'Devices',
    'app.signout': 'Sign out',
    'app.language': '中文',
    'app.language_label': 'Switch to Chinese',
  },
})

export function useSession() {
  const [session, setSession] = useState(getSession)
  useEffect(() => onSessionChange(setSession), [])
  return session
}

// Signing out revokes this browser's device on the server, so its token is dead
// wherever a copy of it might be; the session goes even when the server is not reached
// (the device can then be signed out from another one's Devices page).
export async function signOut(session) {
  try {
    if (session && session.device) await api.del(`/devices/${session.device.id}`)
  } finally {
    clearToken()
  }
}

const PAGES = {timeline: Timeline, trash: Trash, devices: Devices}

function TopBar({route, session}) {
  const [busy, setBusy] = useState(false)
  const switchLanguage = () => {
    setLang(lang() === 'zh' ? 'en' : 'zh')
    location.reload()
  }
  const leave = async () => {
    setBusy(true)
    try {
      await signOut(session)
    } catch (e) {
      // signOut has cleared the session whatever the answer
    }
  }
  return (
    <header class="topbar">
      <a class="brand" href={href('timeline')}>
        <img src={icon} alt="" width="28" height="28" />
        <span>{t('app.name')}</span>
      </a>
      <nav class="nav" aria-label={t('app.nav')}>
        {Object.keys(PAGES).map(name => (
          <a key={name} href={href(name)} aria-current={route === name ? 'page' : undefined}>
            {t(`app.${name}`)}
          </a>
        ))}
      </nav>
      <div class="topbar-end">
        <span class="who" title={session.device ? session.device.name : ''}>
          {session.user ? session.user.name : ''}
        </span>
        <button class="button link" type="button" onClick={switchLanguage}
          aria-label={t('app.language_label')}>{t('app.language')}</button>
        <button class="button" type="button" onClick={leave} disabled={busy}>
          {t('app.signout')}
        </button>
      </div>
    </header>
  )
}

// While signed in, the shared event socket stays open: the pages' live updates ride on
// it, and this device's own revocation elsewhere (an event, or the socket closed with
// 4403, events.js) ends the session here at once.
function useRevocation(session) {
  const deviceId = session && session.device ? session.device.id : null
  useEffect(() => {
    if (deviceId === null) return undefined
    return subscribe(event => {
      if (event.type === 'device.revoked' && event.device_id === deviceId) clearToken()
    })
  }, [deviceId])
}

export function App() {
  const session = useSession()
  const route = useRoute()
  useRevocation(session)
  if (!session) return <SignIn />
  const Page = PAGES[route]
  return (
    <div class="app">
      <TopBar route={route} session={session} />
      <main class="page" id="page">
        <Page key={route} />
      </main>
      <Uploads />
    </div>
  )
}
