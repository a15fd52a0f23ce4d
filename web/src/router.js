// Hash routes: #/ (timeline), #/trash, #/devices. Hash routing needs nothing from the
// server beyond index.html at /, and works from a bookmark or a shared link.
import {useEffect, useState} from 'preact/hooks'

export const ROUTES = ['timeline', 'trash', 'devices']

export function currentRoute() {
  const name = location.hash.replace(/^#\/?/, '').split(/[/?]/)[0]
  return ROUTES.includes(name) ? name : 'timeline'
}

export function href(route) {
  return route === 'timeline' ? '#/' : `#/${route}`
}

export function useRoute() {
  const [route, setRoute] = useState(currentRoute)
  useEffect(() => {
    const update = () => setRoute(currentRoute())
    window.addEventListener('hashchange', update)
    return () => window.removeEventListener('hashchange', update)
  }, [])
  return route
}
