// Chinese first, English second. Each feature module registers its own namespaced
// keys when it is imported (`timeline.empty`, `upload.retry`); t(key, vars) looks a
// key up in the current language, then in Chinese, and fills `{name}` from vars.
// The language comes from navigator.language (Chinese unless it is English), and
// localStorage `tubei.lang` ('zh' or 'en') overrides it.
const LANG_KEY = 'tubei.lang'
export const LANGUAGES = ['zh', 'en']
const tables = {zh: {}, en: {}}

function detect() {
  let saved = null
  try {
    saved = localStorage.getItem(LANG_KEY)
  } catch (e) {
    saved = null
  }
  if (LANGUAGES.includes(saved)) return saved
  const wanted = (navigator.languages && navigator.languages[0]) || navigator.language || 'zh'
  return wanted.toLowerCase().startsWith('en') ? 'en' : 'zh'
}

let current = detect()
document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en'

export function register(messages) {
  for (const lang of LANGUAGES) Object.assign(tables[lang], messages[lang] || {})
}

export function lang() {
  return current
}

// Saves the choice; the app reloads to show it everywhere at once.
export function setLang(next) {
  if (!LANGUAGES.includes(next)) return
  localStorage.setItem(LANG_KEY, next)
  current = next
}

export function t(key, vars) {
  const text = tables[current][key] ?? tables.zh[key] ?? key
  if (!vars) return text
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole))
}
