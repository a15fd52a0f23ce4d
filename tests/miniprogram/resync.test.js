/**
 * A server of several processes says `resync` when its link through Redis comes
 * back: the gallery reloads, as after a reconnect, on a socket that stayed open.
 * Real server (`--events redis://...`), real redis-server of the test's own.
 * @jest-environment jsdom
 */
const {spawn} = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const {createKit} = require('./kit/wx')
const {startServer, makePhotos, uploadDirect} = require('./kit/server')
const {loadPage, until} = require('./kit/pages')

const REDIS_SERVER = '/usr/bin/redis-server'
const haveRedis = fs.existsSync(REDIS_SERVER)
if (!haveRedis) console.log(`no ${REDIS_SERVER}: the resync test is skipped`)

let kit
let server
let tmp
let redis = null
let redisPort

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.listen(0, '127.0.0.1', () => {
      const {port} = probe.address()
      probe.close(() => resolve(port))
    })
    probe.on('error', reject)
  })
}

function answers(port) {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
    socket.on('data', data => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.on('error', () => resolve(false))
  })
}

async function startRedis() {
  redis = spawn(REDIS_SERVER, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', tmp], {stdio: 'ignore'})
  await until(() => answers(redisPort), {what: 'redis-server'})
}

async function killRedis() {
  const exited = new Promise(resolve => redis.once('exit', resolve))
  redis.kill('SIGKILL')
  await exited
  redis = null
}

beforeAll(async () => {
  if (!haveRedis) return
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-resync-'))
  kit = createKit({tmpDir: tmp})
  global.wx = kit.wx
  redisPort = await freePort()
  await startRedis()
  server = await startServer({extraArgs: ['--events', `redis://127.0.0.1:${redisPort}/0`]})
  kit.wx.setStorageSync('tubei.server', server.url)
  kit.wx.setStorageSync('tubei.token', server.token('mum'))
})

afterAll(async () => {
  require('../../miniprogram/utils/events').close()
  if (server) await server.stop()
  if (redis) await killRedis()
  if (tmp) fs.rmSync(tmp, {recursive: true, force: true})
})

;(haveRedis ? test : test.skip)('resync reloads the gallery on the socket that stayed open', async () => {
  const photos = makePhotos(tmp, [
    {name: 'IMG_A.jpg', width: 320, height: 240, seed: 1},
    {name: 'IMG_B.jpg', width: 320, height: 240, seed: 2},
  ])
  for (const photo of photos) await uploadDirect(server, server.token('mum'), photo.path)
  const gallery = loadPage('gallery')
  await gallery.instance.onLoad()
  const events = require('../../miniprogram/utils/events')
  await until(() => events.isOpen() && gallery.data.images.length === 2, {what: 'gallery loaded'})
  const sockets = kit.log.filter(e => e.api === 'connectSocket').length
  const resyncs = []
  events.on('resync', e => resyncs.push(e))

  // What the page shows falls behind the server (as when events were missed).
  gallery.setData({images: gallery.data.images.slice(1)})
  await killRedis()
  await new Promise(r => setTimeout(r, 300))
  await startRedis()

  await until(() => resyncs.length === 1, {what: 'resync', timeout: 20000})
  await until(() => gallery.data.images.length === 2, {what: 'reload on resync'})
  expect(events.isOpen()).toBe(true)
  expect(kit.log.filter(e => e.api === 'connectSocket')).toHaveLength(sockets) // no reconnect
  gallery.instance.onUnload()
})
