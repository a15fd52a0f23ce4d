/**
 * The mini-program's own rules, without a server: which scheme a typed address gets,
 * what a wx.* failure means, EXIF dates from a JPEG's head, and the tus records'
 * share of WeChat's storage.
 * @jest-environment jsdom
 */
const fs = require('fs')
const os = require('os')
const path = require('path')
const {createKit} = require('./kit/wx')
const {makePhotos} = require('./kit/server')

let kit
let tmp
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-rules-'))
  kit = createKit({tmpDir: tmp})
  global.wx = kit.wx
})
afterAll(() => fs.rmSync(tmp, {recursive: true, force: true}))

test('a typed address is http only for a private IP, https otherwise', () => {
  const {parseServer} = require('../../miniprogram/utils/request')
  expect(parseServer('192.168.1.5:8000')).toEqual({url: 'http://192.168.1.5:8000'})
  expect(parseServer(' 10.0.0.2:8000/ ')).toEqual({url: 'http://10.0.0.2:8000'})
  expect(parseServer('172.20.1.1')).toEqual({url: 'http://172.20.1.1'})
  expect(parseServer('172.32.1.1')).toEqual({url: 'https://172.32.1.1'}) // not private
  expect(parseServer('photos.example.com')).toEqual({url: 'https://photos.example.com'})
  expect(parseServer('https://photos.example.com:8443')).toEqual({url: 'https://photos.example.com:8443'})
  expect(parseServer('http://192.168.1.5:8000')).toEqual({url: 'http://192.168.1.5:8000'})
  expect(parseServer('http://photos.example.com').error).toMatch(/^外网地址必须用 https/)
  expect(parseServer('http://8.8.8.8').error).toMatch(/^外网地址必须用 https/)
  expect(parseServer('ftp://x').error).toBe('地址要以 http:// 或 https:// 开头')
  expect(parseServer('').error).toBe('请填写服务器地址')
})

test("a wx failure is told by its errMsg and errno, keeping WeChat's words", () => {
  const {kind, explain} = require('../../miniprogram/utils/wxerror')
  expect(kind({errMsg: 'saveImageToPhotosAlbum:fail privacy permission is not authorized', errno: 104})).toBe('privacy')
  expect(kind({errMsg: 'authorize:fail privacy permission is not authorized'})).toBe('privacy')
  expect(kind({errMsg: 'saveImageToPhotosAlbum:fail auth deny'})).toBe('denied')
  expect(kind({errMsg: 'authorize:fail auth deny'})).toBe('denied')
  expect(kind({errMsg: 'chooseMedia:fail cancel'})).toBe('cancel')
  expect(kind({errMsg: 'chooseMessageFile:fail api scope is not declared in the privacy agreement', errno: 112})).toBe('undeclared')
  expect(explain({errMsg: 'request:fail url not in domain list'})).toEqual({code: 'domain',
    message: expect.stringMatching(/^手机不能访问这个地址（url not in domain list）/)})
  expect(explain({errMsg: 'uploadFile:fail interrupted'})).toEqual({code: 'interrupted',
    message: expect.stringContaining('（interrupted）。回到图备后会自动继续')})
  expect(explain({errMsg: 'request:fail timeout'}).code).toBe('timeout')
  expect(explain({errMsg: 'request:fail exceed max task count'}).code).toBe('limit')
  expect(explain({errMsg: 'request:fail ssl hand shake error'}).message).toContain('（ssl hand shake error）')
})

test('the EXIF time of a JPEG, from the head of the file', () => {
  const {readExif, stamp, extension} = require('../../miniprogram/utils/exif')
  const [camera, bare] = makePhotos(tmp, [
    {name: 'exif.jpg', width: 32, height: 24, taken: '2023:07:14 18:30:05'},
    {name: 'bare.jpg', width: 32, height: 24},
  ])
  const head = file => {
    const b = fs.readFileSync(file).subarray(0, 128 * 1024)
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)
  }
  expect(readExif(head(camera.path))).toEqual({jpeg: true, exif: true, taken: '20230714_183005'})
  expect(readExif(head(bare.path))).toEqual({jpeg: true, exif: false, taken: ''})
  expect(readExif(new Uint8Array([0x89, 0x50, 0x4e, 0x47]).buffer)).toEqual({jpeg: false, exif: false, taken: ''})
  const cut = head(camera.path).slice(0, 40) // an EXIF block cut short: not known, no error
  expect(readExif(cut)).toMatchObject({jpeg: true, taken: ''})
  expect(stamp(new Date(2026, 0, 2, 3, 4, 5))).toBe('20260102_030405')
  expect(extension('/tmp/tmp_abc.HEIC')).toBe('heic')
  expect(extension('/tmp/noext')).toBe('jpg')
})

test('tus records stay within their share of the 10 MB storage', () => {
  const tus = require('../../miniprogram/utils/tus')
  for (let i = 0; i < tus.MAX_RECORDS + 30; i++) {
    tus.remember(`digest-${i}`, {url: `/api/v1/uploads/${'u'.repeat(40)}${i}`, path: `/tmp/tmp_${i}.jpg`,
      size: 5e6, name: `IMG_20260101_0000${i}.jpg`})
  }
  const records = tus.records()
  expect(Object.keys(records)).toHaveLength(tus.MAX_RECORDS)
  expect(records['digest-0']).toBeUndefined() // the oldest went first
  expect(records[`digest-${tus.MAX_RECORDS + 29}`]).toBeDefined()
  expect(kit.storage.get(tus.KEY_TUS).length).toBeLessThan(tus.MAX_RECORD_BYTES)

  // Long names: the byte budget, not only the count, holds.
  for (let i = 0; i < 60; i++) tus.remember(`long-${i}`, {url: '/u', path: '/p', size: 1, name: '照'.repeat(3000)})
  expect(JSON.stringify(tus.records()).length).toBeLessThanOrEqual(tus.MAX_RECORD_BYTES)
  expect(tus.record('long-59')).toBeDefined()
})
