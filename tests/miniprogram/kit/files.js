// The kit's storage and files, with WeChat's budgets: storage 10 MB (1 MB a key),
// the user data folder 200 MB, readFile only for files of 100 MB at most (WeChat:
// 单个文件大小上限为100M — a position and length do not lift it; a bigger file is read
// with open/read/close, on real file descriptors here); temp files (picks, downloads,
// compressed copies) live in their own folder, which a restart empties.
const crypto = require('crypto')
const {execFile} = require('child_process')
const fs = require('fs')
const path = require('path')
const {stripExif} = require('./phone')

const MB = 1024 * 1024
const LIMITS = {storage: 10 * MB, storageKey: 1 * MB, userData: 200 * MB, readFile: 100 * MB}

function toArrayBuffer(buffer) {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength)
}

// What the base library says of chooseMedia parameters it refuses, or null.
function chooseMediaError(options) {
  const list = (name, valid) => {
    const value = options[name]
    if (value === undefined) return null
    if (!Array.isArray(value)) return `parameter error: parameter.${name} should be Array instead of ${typeof value}`
    const bad = value.find(v => !valid.includes(v))
    return bad === undefined ? null : `parameter error: invalid ${name} "${bad}"`
  }
  if (options.count !== undefined && !(Number.isInteger(options.count) && options.count >= 1 && options.count <= 20)) {
    return 'parameter error: count should be between 1 and 20'
  }
  if (options.maxDuration !== undefined && !(options.maxDuration >= 3 && options.maxDuration <= 60)) {
    return 'parameter error: maxDuration should be between 3 and 60'
  }
  return list('mediaType', ['image', 'video', 'mix']) || list('sourceType', ['album', 'camera']) ||
    list('sizeType', ['original', 'compressed'])
}

function folderBytes(dir) {
  let sum = 0
  if (!fs.existsSync(dir)) return 0
  for (const name of fs.readdirSync(dir)) {
    const full = path.join(dir, name)
    const stat = fs.statSync(full)
    sum += stat.isDirectory() ? folderBytes(full) : stat.size
  }
  return sum
}

// kit: {storage, log, ui, digests, limits}; settle(options, error, result) delivers.
function makeFiles(kit, {tmpDir, settle}) {
  const tempDir = path.join(tmpDir, 'wxtmp')
  const userDir = path.join(tmpDir, 'usr')
  fs.mkdirSync(tempDir, {recursive: true})
  fs.mkdirSync(userDir, {recursive: true})
  let serial = 0
  const openFds = new Map() // the kit's fd -> the real one

  function tempPath(ext) {
    serial += 1
    const random = crypto.randomBytes(6).toString('hex')
    return path.join(tempDir, `tmp_${random}${serial}${ext || ''}`)
  }

  function inUserData(file) {
    const full = path.resolve(file)
    return full === userDir || full.startsWith(userDir + path.sep)
  }

  function writable(api, file) {
    if (!inUserData(file)) throw new Error(`${api}:fail permission denied, open ${file}`)
  }

  function storageBytes() {
    let sum = 0
    kit.storage.forEach((value, key) => { sum += key.length + value.length })
    return sum
  }

  const storage = {
    getStorageSync: key => (kit.storage.has(key) ? JSON.parse(kit.storage.get(key)) : ''),
    setStorageSync(key, value) {
      const text = JSON.stringify(value)
      if (key.length + text.length > kit.limits.storageKey) {
        throw new Error('setStorageSync:fail entry size limit reached')
      }
      const before = kit.storage.has(key) ? key.length + kit.storage.get(key).length : 0
      if (storageBytes() - before + key.length + text.length > kit.limits.storage) {
        throw new Error('setStorageSync:fail exceed storage max size 10MB')
      }
      kit.storage.set(key, text)
    },
    removeStorageSync: key => kit.storage.delete(key),
  }

  const manager = {
    getFileInfo(options) {
      fs.readFile(options.filePath, (error, buffer) => {
        if (error) return settle(options, {errMsg: `getFileInfo:fail ${error.message}`})
        const result = {size: buffer.length, errMsg: 'getFileInfo:ok'}
        if (options.digestAlgorithm) {
          if (!kit.digests.includes(options.digestAlgorithm)) {
            return settle(options, {errMsg: 'getFileInfo:fail invalid digestAlgorithm'})
          }
          result.digest = crypto.createHash(options.digestAlgorithm).update(buffer).digest('hex')
        }
        settle(options, null, result)
      })
    },
    readFile(options) {
      fs.open(options.filePath, 'r', (error, fd) => {
        if (error) return settle(options, {errMsg: `readFile:fail no such file or directory ${options.filePath}`, errno: 1300002})
        const size = fs.fstatSync(fd).size
        if (size > kit.limits.readFile) {
          fs.closeSync(fd)
          return settle(options, {errMsg: 'readFile:fail the maximum size of the file is 100MB'})
        }
        const position = options.position || 0
        const length = options.length === undefined ? size - position : options.length
        const wanted = Math.max(0, Math.min(length, size - position))
        const buffer = Buffer.alloc(wanted)
        fs.read(fd, buffer, 0, buffer.length, position, readError => {
          fs.closeSync(fd)
          if (readError) return settle(options, {errMsg: `readFile:fail ${readError.message}`})
          const data = options.encoding ? buffer.toString(options.encoding) : toArrayBuffer(buffer)
          settle(options, null, {data, errMsg: 'readFile:ok'})
        })
      })
    },
    // open / read / close (base library 2.16.1): a string fd over a real one.
    open(options) {
      kit.log.push({api: 'open', filePath: options.filePath, flag: options.flag})
      const flag = options.flag || 'r'
      if (flag !== 'r') writable('open', options.filePath)
      fs.open(options.filePath, flag, (error, real) => {
        if (error) return settle(options, {errMsg: `open:fail no such file or directory, open ${options.filePath}`, errno: 1300002})
        const fd = `fd${real}`
        openFds.set(fd, real)
        settle(options, null, {fd, errMsg: 'open:ok'})
      })
    },
    read(options) {
      const real = openFds.get(options.fd)
      if (real === undefined) return settle(options, {errMsg: 'read:fail bad file descriptor', errno: 1300009})
      const target = options.arrayBuffer
      if (Object.prototype.toString.call(target) !== '[object ArrayBuffer]') {
        return settle(options, {errMsg: 'read:fail parameter error: parameter.arrayBuffer should be ArrayBuffer'})
      }
      const offset = options.offset || 0
      const length = options.length || 0
      if (!Number.isInteger(offset) || offset < 0 || offset > target.byteLength) {
        return settle(options, {errMsg: 'read:fail the value of "offset" is out of range'})
      }
      if (!Number.isInteger(length) || length < 0 || offset + length > target.byteLength) {
        return settle(options, {errMsg: 'read:fail the value of "length" is out of range'})
      }
      const position = options.position === undefined ? null : options.position
      kit.log.push({api: 'read', fd: options.fd, position, length})
      fs.read(real, new Uint8Array(target), offset, length, position, (error, bytesRead) => {
        if (error) return settle(options, {errMsg: `read:fail ${error.message}`})
        settle(options, null, {bytesRead, arrayBuffer: target, errMsg: 'read:ok'})
      })
    },
    close(options) {
      const real = openFds.get(options.fd)
      if (real === undefined) return settle(options, {errMsg: 'close:fail bad file descriptor', errno: 1300009})
      openFds.delete(options.fd)
      fs.close(real, () => settle(options, null, {errMsg: 'close:ok'}))
    },
    accessSync(filePath) {
      if (!fs.existsSync(filePath)) throw new Error(`accessSync:fail no such file or directory ${filePath}`)
    },
    statSync(filePath) {
      if (!fs.existsSync(filePath)) throw new Error(`statSync:fail no such file or directory ${filePath}`)
      const stat = fs.statSync(filePath)
      return {size: stat.size, lastModifiedTime: Math.floor(stat.mtimeMs / 1000),
        isFile: () => stat.isFile(), isDirectory: () => stat.isDirectory()}
    },
    mkdirSync(dirPath, recursive) {
      writable('mkdirSync', dirPath)
      if (fs.existsSync(dirPath)) throw new Error(`mkdirSync:fail file already exists ${dirPath}`)
      fs.mkdirSync(dirPath, {recursive: Boolean(recursive)})
    },
    copyFileSync(srcPath, destPath) {
      writable('copyFileSync', destPath)
      if (!fs.existsSync(srcPath)) throw new Error(`copyFileSync:fail no such file or directory ${srcPath}`)
      const replaced = fs.existsSync(destPath) ? fs.statSync(destPath).size : 0
      if (folderBytes(userDir) - replaced + fs.statSync(srcPath).size > kit.limits.userData) {
        throw new Error('copyFileSync:fail the maximum size of the file storage limit is exceeded')
      }
      fs.copyFileSync(srcPath, destPath)
    },
    unlinkSync(filePath) {
      writable('unlinkSync', filePath)
      if (!fs.existsSync(filePath)) throw new Error(`unlinkSync:fail no such file or directory ${filePath}`)
      fs.unlinkSync(filePath)
    },
    rmdirSync(dirPath) {
      writable('rmdirSync', dirPath)
      fs.rmdirSync(dirPath)
    },
    readdirSync(dirPath) {
      if (!fs.existsSync(dirPath)) throw new Error(`readdirSync:fail no such file or directory ${dirPath}`)
      return fs.readdirSync(dirPath)
    },
  }

  // A pick hands over a temp copy (a big video as a sparse copy would be, quickly) named tmp_..., never the album's own name.
  function pickCopy(source, strip) {
    const ext = path.extname(source).toLowerCase() || '.jpg'
    const copy = tempPath(ext)
    if (!strip) {
      fs.copyFileSync(source, copy)
      return copy
    }
    fs.writeFileSync(copy, stripExif(fs.readFileSync(source)))
    return copy
  }

  const media = {
    // kit.media: [{path, width, height}] for photos, plus {fileType: 'video', duration,
    // thumb} for videos (kit/server.js makeVideos). mediaType filters what the person
    // can pick; the parameters are checked as the base library checks them.
    chooseMedia(options) {
      kit.log.push({api: 'chooseMedia', options})
      const wrong = chooseMediaError(options)
      if (wrong) return settle(options, {errMsg: `chooseMedia:fail ${wrong}`})
      const types = options.mediaType || ['image', 'video']
      const allowed = m => types.includes('mix') || types.includes(m.fileType === 'video' ? 'video' : 'image')
      const offered = kit.media.map((m, i) => i).filter(i => allowed(kit.media[i])).slice(0, options.count || 9)
      if (!offered.length) return settle(options, {errMsg: 'chooseMedia:fail cancel'})
      const picked = offered.map(i => kit.media[i])
      kit.media = kit.media.filter((m, i) => !offered.includes(i))
      const tempFiles = picked.map(m => {
        if (m.fileType === 'video') {
          const tempFilePath = pickCopy(m.path, false)
          return {tempFilePath, size: fs.statSync(tempFilePath).size, duration: m.duration,
            width: m.width, height: m.height, thumbTempFilePath: m.thumb ? pickCopy(m.thumb, false) : '',
            fileType: 'video'}
        }
        const tempFilePath = pickCopy(m.path, kit.ui.stripExif)
        return {tempFilePath, size: fs.statSync(tempFilePath).size, fileType: 'image', width: m.width, height: m.height}
      })
      const kinds = new Set(tempFiles.map(f => f.fileType))
      settle(options, null, {tempFiles, type: kinds.size > 1 ? 'mix' : [...kinds][0], errMsg: 'chooseMedia:ok'})
    },
    // kit.chatFiles: [{path, name, time}] — what the chosen chat holds.
    chooseMessageFile(options) {
      kit.log.push({api: 'chooseMessageFile', options})
      if (!kit.chatFiles.length) return settle(options, {errMsg: 'chooseMessageFile:fail cancel'})
      const tempFiles = kit.chatFiles.splice(0, options.count || 100).map(f => {
        const copy = pickCopy(f.path, false)
        const name = f.name || path.basename(f.path)
        return {path: copy, size: fs.statSync(copy).size, name, time: f.time || Math.floor(Date.now() / 1000),
          type: /\.(jpe?g|png|gif|webp|heic|heif)$/i.test(name) ? 'image' : 'file'}
      })
      settle(options, null, {tempFiles, errMsg: 'chooseMessageFile:ok'})
    },
    // A real smaller JPEG, made with Pillow (the server's venv), as WeChat would.
    compressImage(options) {
      kit.log.push({api: 'compressImage', src: options.src})
      const out = tempPath('.jpg')
      const script = 'import sys\nfrom PIL import Image\nim = Image.open(sys.argv[1]).convert("RGB")\n' +
        'w = int(sys.argv[3])\nif w and im.width > w: im = im.resize((w, max(1, im.height * w // im.width)))\n' +
        'im.save(sys.argv[2], "JPEG", quality=int(sys.argv[4]))'
      execFile(kit.python, ['-c', script, options.src, out, String(options.compressedWidth || 0),
        String(options.quality || 80)], error => {
        if (error) settle(options, {errMsg: `compressImage:fail ${error.message}`})
        else settle(options, null, {tempFilePath: out, errMsg: 'compressImage:ok'})
      })
    },
  }

  return {storage, manager, media, tempPath, tempDir, userDir, inUserData, folderBytes,
    openFds: () => openFds.size,
    // A restart: the killed process's descriptors go with it, and the temp files.
    clearTemp() {
      openFds.forEach(real => { try { fs.closeSync(real) } catch (e) { /* closed */ } })
      openFds.clear()
      fs.rmSync(tempDir, {recursive: true, force: true})
      fs.mkdirSync(tempDir, {recursive: true})
    },
    userBytes: () => folderBytes(userDir)}
}

module.exports = {makeFiles, LIMITS, MB}
