// Just enough EXIF for naming a photo: whether a JPEG carries an EXIF block, and its
// DateTimeOriginal (else DateTime). Reads the head of the file only; anything it does
// not understand is "not known" rather than an error.

const HEAD_BYTES = 128 * 1024 // the APP1 segment sits at the start, at most 64 KB

const TAG_DATETIME = 0x0132
const TAG_EXIF_IFD = 0x8769
const TAG_DATETIME_ORIGINAL = 0x9003

// -> {jpeg: bool, exif: bool, taken: 'YYYYMMDD_HHMMSS' | ''}
function readExif(buffer) {
  const view = new DataView(buffer)
  const none = {jpeg: false, exif: false, taken: ''}
  if (view.byteLength < 4 || view.getUint16(0) !== 0xffd8) return none
  let at = 2
  while (at + 4 <= view.byteLength) {
    if (view.getUint8(at) !== 0xff) break
    const marker = view.getUint8(at + 1)
    if (marker === 0xda || marker === 0xd9) break // image data: no more metadata
    const length = view.getUint16(at + 2)
    if (marker === 0xe1 && at + 10 <= view.byteLength && ascii(view, at + 4, 6) === 'Exif\0\0') {
      const end = Math.min(view.byteLength, at + 2 + length)
      // An EXIF block with no tags in it counts as none (as the server counts it).
      return {jpeg: true, exif: tagCount(view, at + 10, end) > 0, taken: dateIn(view, at + 10, end)}
    }
    at += 2 + length
  }
  return {jpeg: true, exif: false, taken: ''}
}

function ascii(view, at, length) {
  let out = ''
  for (let i = 0; i < length && at + i < view.byteLength; i++) out += String.fromCharCode(view.getUint8(at + i))
  return out
}

function tagCount(view, tiff, end) {
  try {
    const little = ascii(view, tiff, 2) === 'II'
    const ifd0 = view.getUint32(tiff + 4, little)
    return tiff + ifd0 + 2 <= end ? view.getUint16(tiff + ifd0, little) : 0
  } catch (e) {
    return 0
  }
}

function dateIn(view, tiff, end) {
  try {
    const little = ascii(view, tiff, 2) === 'II'
    const u16 = at => view.getUint16(tiff + at, little)
    const u32 = at => view.getUint32(tiff + at, little)
    const entries = ifd => {
      const found = {}
      const count = u16(ifd)
      for (let i = 0; i < count; i++) {
        const entry = ifd + 2 + i * 12
        if (tiff + entry + 12 > end) break
        found[u16(entry)] = {type: u16(entry + 2), count: u32(entry + 4), value: u32(entry + 8)}
      }
      return found
    }
    const text = tag => (tag && tag.type === 2 && tag.count >= 19 ? ascii(view, tiff + tag.value, 19) : '')
    const ifd0 = entries(u32(4))
    const exifIfd = ifd0[TAG_EXIF_IFD] ? entries(ifd0[TAG_EXIF_IFD].value) : {}
    const value = text(exifIfd[TAG_DATETIME_ORIGINAL]) || text(ifd0[TAG_DATETIME])
    const m = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(value)
    return m && m[1] !== '0000' ? `${m[1]}${m[2]}${m[3]}_${m[4]}${m[5]}${m[6]}` : ''
  } catch (e) {
    return '' // a DataView read past the end: a damaged block
  }
}

function pad(n) {
  return String(n).padStart(2, '0')
}

// 'YYYYMMDD_HHMMSS' of a Date, in the phone's time zone (as a camera names its files).
function stamp(date) {
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}_` +
    `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`
}

function extension(path, fallback = 'jpg') {
  const m = /\.([a-z0-9]{2,5})$/i.exec(String(path))
  return m ? m[1].toLowerCase() : fallback
}

module.exports = {readExif, stamp, extension, HEAD_BYTES}
