// The uploader's own files on the phone: the hash of a picked file, the named copy a
// small photo goes up from (utils/uploader.js sendMultipart), and the small thumbnail
// kept for a started tus upload so that after a restart the person sees which photo
// to pick again. Everything lives in the user data folder; `fs` is
// wx.getFileSystemManager().
const {call} = require('./tus')

const PENDING_DIR = 'pending' // thumbnails of started tus uploads, in the user data folder
const OUTBOX_DIR = 'outbox' // named copies of small photos while they go up

function promisify(fn, options) {
  return new Promise((resolve, reject) => fn(Object.assign({}, options, {success: resolve, fail: reject})))
}

// sha256 where the base library has it, md5 otherwise; the server checks either.
async function hashFile(fs, filePath) {
  for (const algorithm of ['sha256', 'md5']) {
    try {
      const info = await call(fs, 'getFileInfo', {filePath, digestAlgorithm: algorithm})
      if (info.digest) return {algorithm, digest: info.digest.toLowerCase(), size: info.size}
    } catch (e) {
      // An older base library refuses sha256: try the next algorithm.
    }
  }
  throw new Error('无法读取这张照片')
}

function accessible(fs, path) {
  try {
    fs.accessSync(path)
    return true
  } catch (e) {
    return false
  }
}

// wx.uploadFile names the part after the file: a copy of the photo under its own name
// (a temp file is called tmp_...), or '' when it already has it or there is no room.
function namedCopy(fs, item) {
  if (String(item.path).split('/').pop() === item.name) return ''
  const dir = `${wx.env.USER_DATA_PATH}/${OUTBOX_DIR}/${item.key}`
  try {
    fs.mkdirSync(dir, true)
    fs.copyFileSync(item.path, `${dir}/${item.name}`)
    return `${dir}/${item.name}`
  } catch (e) {
    return '' // no room: sent under its temp name rather than not at all
  }
}

// A named copy and its folder, once sent.
function removeCopy(fs, path) {
  try {
    fs.unlinkSync(path)
    fs.rmdirSync(path.slice(0, path.lastIndexOf('/')))
  } catch (e) {
    // gone already
  }
}

// A small copy of the photo, {thumb} for the tus record, or {} when none could be made.
async function savePendingThumb(fs, item) {
  try {
    // A video's poster (chooseMedia's thumbTempFilePath) stands for it.
    const src = item.kind === 'video' ? item.thumb : item.path
    if (!src) return {}
    const {tempFilePath} = await promisify(wx.compressImage, {src, quality: 40, compressedWidth: 240})
    const dir = `${wx.env.USER_DATA_PATH}/${PENDING_DIR}`
    try { fs.mkdirSync(dir, true) } catch (e) { /* already there */ }
    const thumb = `${dir}/${item.digest.slice(0, 24)}.jpg`
    fs.copyFileSync(tempFilePath, thumb)
    return {thumb}
  } catch (e) {
    return {} // shown by its size alone
  }
}

module.exports = {hashFile, accessible, namedCopy, removeCopy, savePendingThumb}
