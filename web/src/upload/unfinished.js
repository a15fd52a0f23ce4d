// Uploads not finished when the page went away, remembered across a reload so the
// panel can say which they were. tus-js-client keeps each one's URL itself (its URL
// storage, `tus::<fingerprint>::...` in localStorage); this list keeps what a person
// needs to recognise the file. Keyed by the file's SHA-256.
const KEY = 'tubei.uploads.unfinished'

function read() {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) || '{}')
    return value && typeof value === 'object' ? value : {}
  } catch (e) {
    return {}
  }
}

function write(all) {
  try {
    if (Object.keys(all).length) localStorage.setItem(KEY, JSON.stringify(all))
    else localStorage.removeItem(KEY)
  } catch (e) {
    // storage full or refused: a reload will not know of this upload, nothing worse
  }
}

export function fingerprint(sha256, size) {
  return `tubei-${sha256}-${size}`
}

export function listUnfinished() {
  return Object.values(read()).sort((a, b) => a.at - b.at)
}

export function remember({sha256, name, path, size, type, url}) {
  const all = read()
  all[sha256] = {sha256, name, path, size, type, url: url || all[sha256]?.url || null, at: all[sha256]?.at || Date.now()}
  write(all)
}

// Forget a file: its entry here and tus-js-client's stored URLs for it.
export function forget(sha256) {
  const all = read()
  const entry = all[sha256]
  delete all[sha256]
  write(all)
  if (!entry) return
  const prefix = `tus::${fingerprint(sha256, entry.size)}::`
  for (let i = localStorage.length - 1; i >= 0; i -= 1) {
    const key = localStorage.key(i)
    if (key && key.startsWith(prefix)) localStorage.removeItem(key)
  }
}
