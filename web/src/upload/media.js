// Which picked or dropped files are photos and videos, and the files of a dropped folder.
const EXTENSIONS = new Set([
  'jpg', 'jpeg', 'jpe', 'png', 'gif', 'webp', 'heic', 'heif', 'hif', 'avif', 'tif', 'tiff',
  'bmp', 'mpo', 'dng', 'mp4', 'm4v', 'mov', 'qt', '3gp', '3g2',
])
// What the file inputs offer: every image and video, and what browsers may not type.
export const ACCEPT = 'image/*,video/*,.heic,.heif,.hif,.avif,.mov,.mp4,.m4v,.3gp'

function extension(name) {
  const dot = name.lastIndexOf('.')
  return dot < 0 ? '' : name.slice(dot + 1).toLowerCase()
}

// The server decides from the bytes; this only keeps what cannot be media from being sent.
export function isMedia(file) {
  const type = (file.type || '').toLowerCase()
  if (type === 'image/svg+xml') return false
  if (type.startsWith('image/') || type.startsWith('video/')) return true
  return EXTENSIONS.has(extension(file.name))
}

// A file's path inside what was picked or dropped ('Trip/day 1/IMG_1.jpg'), or its name.
export function relativePath(file) {
  return file.tubeiPath || file.webkitRelativePath || file.name
}

function readAll(reader) {
  // readEntries answers in batches (100 in Chromium) until an empty one.
  return new Promise((resolve, reject) => {
    const entries = []
    const next = () => reader.readEntries(batch => {
      if (!batch.length) return resolve(entries)
      entries.push(...batch)
      next()
    }, reject)
    next()
  })
}

async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject))
    // fullPath is '/Trip/IMG_1.jpg'; a File's own properties are read-only, this one is ours
    Object.defineProperty(file, 'tubeiPath', {value: entry.fullPath.replace(/^\//, '')})
    out.push(file)
  } else if (entry.isDirectory) {
    for (const child of await readAll(entry.createReader())) await walk(child, out)
  }
}

// Every file of a drop, folders walked through; the entries must be taken at once,
// before the drop event returns.
export async function droppedFiles(dataTransfer) {
  const items = [...(dataTransfer.items || [])].filter(item => item.kind === 'file')
  const entries = items.map(item => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
  if (!entries.length || entries.some(entry => !entry)) return [...dataTransfer.files]
  const out = []
  for (const entry of entries) await walk(entry, out)
  return out
}
