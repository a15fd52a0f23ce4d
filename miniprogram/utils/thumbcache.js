// Thumbnails kept between sessions in the user data folder (wx.env.USER_DATA_PATH), so
// the gallery does not download every one again each time. WeChat gives a mini-program
// 200 MB there in all; the cache takes at most BUDGET of it and drops the least
// recently shown first. Its index (LRU order, oldest first) is one small storage key.

const KEY = 'tubei.thumbs' // [[name, bytes], ...], oldest first
const DIR = 'thumbs'
const MB = 1024 * 1024

let budget = 100 * MB // half the folder: room is left for pending-photo thumbnails
let index = null // Map name -> bytes, insertion order = LRU order
let dirty = false
let timer = null

function fs() {
  return wx.getFileSystemManager()
}

function folder() {
  return `${wx.env.USER_DATA_PATH}/${DIR}`
}

// 64 hex characters of sha256 are more than a file name needs; 24 stay unique.
function nameOf(id) {
  return `${String(id).slice(0, 24)}.jpg`
}

function pathOf(name) {
  return `${folder()}/${name}`
}

function exists(path) {
  try {
    fs().accessSync(path)
    return true
  } catch (e) {
    return false
  }
}

function load() {
  if (index) return index
  index = new Map()
  const stored = wx.getStorageSync(KEY) || []
  // A file the system cleaned away (or a half-written one) leaves the index.
  stored.forEach(([name, bytes]) => {
    if (exists(pathOf(name))) index.set(name, bytes)
    else dirty = true
  })
  try {
    fs().mkdirSync(folder(), true)
  } catch (e) {
    // already there
  }
  return index
}

function save() {
  clearTimeout(timer)
  timer = null
  if (!dirty || !index) return
  dirty = false
  try {
    wx.setStorageSync(KEY, Array.from(index.entries()))
  } catch (e) {
    // storage full: the files are still there, the index is rebuilt next time
  }
}

function saveSoon() {
  dirty = true
  if (!timer) timer = setTimeout(save, 1000)
}

function total() {
  let sum = 0
  load().forEach(bytes => { sum += bytes })
  return sum
}

// The cached file of image `id`, or '' — marked as just used.
function get(id) {
  const name = nameOf(id)
  const map = load()
  if (!map.has(name)) return ''
  const path = pathOf(name)
  if (!exists(path)) {
    map.delete(name)
    saveSoon()
    return ''
  }
  const bytes = map.get(name)
  map.delete(name)
  map.set(name, bytes)
  saveSoon()
  return path
}

// Keep `tempPath` (a downloaded thumbnail) as image `id`'s; returns the kept path, or
// the temp path when it cannot be kept (the folder is full of other things).
function put(id, tempPath) {
  const map = load()
  const name = nameOf(id)
  let bytes
  try {
    bytes = fs().statSync(tempPath).size
  } catch (e) {
    return tempPath
  }
  if (bytes > budget) return tempPath
  evict(budget - bytes, name)
  try {
    fs().copyFileSync(tempPath, pathOf(name))
  } catch (e) {
    return tempPath
  }
  map.delete(name)
  map.set(name, bytes)
  dirty = true
  save()
  return pathOf(name)
}

// Drop the least recently used until at most `limit` bytes remain.
function evict(limit, keep) {
  const map = load()
  let sum = total()
  for (const [name, bytes] of Array.from(map.entries())) {
    if (sum <= limit) break
    if (name === keep) continue
    try {
      fs().unlinkSync(pathOf(name))
    } catch (e) {
      // already gone
    }
    map.delete(name)
    sum -= bytes
    dirty = true
  }
}

function setBudget(bytes) {
  budget = bytes
  evict(budget)
  save()
}

// Forget the in-memory index (a new session reads it from storage again).
function reset() {
  save()
  index = null
}

module.exports = {get, put, total, setBudget, reset, KEY, MB, nameOf}
