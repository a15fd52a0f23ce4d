// What the pages need to know of a video: its badge (m:ss), whether the phone can be
// expected to play it, what previewMedia is handed, and what can be saved to the
// album. The server keeps a video as sent; WeChat's player (and the phone's album)
// takes H.264 everywhere, HEVC on most phones, little else.
const {url} = require('./request')

// Codecs (as FFmpeg names them) WeChat's player is expected to play on any phone.
const PLAYABLE = ['h264']
// Containers saveVideoToPhotosAlbum takes (WeChat documents mp4; a MOV of H.264 or
// HEVC is the same ISO file format and is saved under an .mp4 name).
const SAVABLE_MIME = ['video/mp4', 'video/quicktime']
// wx.downloadFile refuses more than this.
const MAX_DOWNLOAD = 200 * 1024 * 1024

function isVideo(image) {
  return Boolean(image) && image.kind === 'video'
}

// A picked file (chooseMedia's fileType, chooseMessageFile's type) that is a video.
function isVideoFile(file) {
  return file.fileType === 'video' || file.type === 'video'
}

// 0:07, 1:05, 1:02:03 — the grid's badge.
function durationText(seconds) {
  const total = Math.max(0, Math.round(Number(seconds) || 0))
  const s = String(total % 60).padStart(2, '0')
  const m = Math.floor(total / 60) % 60
  const h = Math.floor(total / 3600)
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

// The phone-playable version of a video the server makes (an H.264 preview of an
// HEVC or VP9 original, `video_preview: 'ready'`): its signed URL under
// `signed_urls.video_preview` (null until ready), made absolute, or ''.
function previewVideo(image) {
  const signed = image && image.signed_urls
  return signed && signed.video_preview ? url(signed.video_preview) : ''
}

// {url, poster, playable, note} for previewMedia: the original when the phone can
// play it, else a preview video when the server has one, else the original with a
// note that this phone may not play it.
function playback(image, media) {
  const codec = String(image.codec || '').toLowerCase()
  const poster = media.preview || media.thumbnail || ''
  if (PLAYABLE.includes(codec)) return {url: media.original, poster, playable: true, note: ''}
  const preview = previewVideo(image)
  if (preview) return {url: preview, poster, playable: true, note: ''}
  return {url: media.original, poster, playable: false,
    note: `这段视频是 ${codec ? codec.toUpperCase() : '未知'} 编码，手机上可能无法播放；原文件已完整备份在服务器上。`}
}

// What saving to the album means for this video: {path, preview} of the server's
// file to download (the original, else a preview video, `preview` true), or {why}
// when nothing can be saved.
function saveSource(image) {
  const fits = SAVABLE_MIME.includes(image.mime) && image.size <= MAX_DOWNLOAD
  if (fits) return {path: image.urls.original, preview: false}
  const preview = image.urls && image.urls.video_preview
  if (preview) return {path: preview, preview: true}
  if (image.size > MAX_DOWNLOAD) return {why: '视频超过 200 MB，微信无法下载到手机；原文件完整保存在服务器上。'}
  return {why: `手机相册不接受这种格式（${image.format || image.mime}）的视频；原文件完整保存在服务器上。`}
}

// A still that moves: a Live Photo's still (`kind: 'live'`, the MOV half's signed
// original under `signed_urls.live_video`) or a motion photo (`kind: 'motion'`, its
// video part under `signed_urls.motion_video`). {badge, url} of the video a tap plays,
// made absolute, or null: a plain photo, or a server that names no such video (the
// still then stays the photo it also is).
function stillVideo(image) {
  const signed = (image && image.signed_urls) || {}
  if (image && image.kind === 'live' && signed.live_video) return {badge: 'LIVE', url: url(signed.live_video)}
  if (image && image.kind === 'motion' && signed.motion_video) return {badge: '动态', url: url(signed.motion_video)}
  return null
}

// The gallery's cells ({id, liveStill}) with `hidden` set on each MOV half of a Live
// Photo whose still is among them: the pair is one item, the still's cell. A MOV whose
// still is not loaded (not yet, or gone) stays a video of its own.
function hideLiveHalves(cells) {
  const ids = new Set(cells.map(c => c.id))
  return cells.map(c => {
    const hidden = Boolean(c.liveStill) && ids.has(c.liveStill)
    return Boolean(c.hidden) === hidden ? c : Object.assign({}, c, {hidden})
  })
}

module.exports = {isVideo, isVideoFile, durationText, previewVideo, playback, saveSource, stillVideo, hideLiveHalves,
  PLAYABLE, SAVABLE_MIME, MAX_DOWNLOAD}
