// Photos this phone picked from the album that reached the server without EXIF: the
// gallery marks them 可能不是原图 (WeChat may have handed over a re-encoded copy).
// Only these are remembered, by the first 24 hex of their id, so the list stays
// small (at most MAX_PICKED, about 150 KB of WeChat's 10 MB storage).
const KEY_PICKED = 'tubei.picked'
const MAX_PICKED = 5000

function pickedIds() {
  return new Set(wx.getStorageSync(KEY_PICKED) || [])
}

function notePicked(id) {
  const short = String(id).slice(0, 24)
  const list = (wx.getStorageSync(KEY_PICKED) || []).filter(x => x !== short)
  list.push(short)
  wx.setStorageSync(KEY_PICKED, list.slice(-MAX_PICKED))
}

module.exports = {pickedIds, notePicked, KEY_PICKED, MAX_PICKED}
