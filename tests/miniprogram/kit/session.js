// One wx kit and one real server for a test file, the phone paired as `mum`:
// const session = pairedSession('tubei-x-'), then `const {kit, server, tmp} = session`
// inside each test (they exist once beforeAll has run).
const fs = require('fs')
const os = require('os')
const path = require('path')
const {createKit} = require('./wx')
const {startServer} = require('./server')

// kitOptions: createKit's (phone, suspendAfter, socketsCloseAfter).
function pairedSession(prefix, kitOptions = {}) {
  const session = {}
  beforeAll(async () => {
    session.tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    session.kit = createKit(Object.assign({tmpDir: session.tmp}, kitOptions))
    global.wx = session.kit.wx // replaces the stub miniprogram-simulate installs
    session.server = await startServer()
    session.kit.wx.setStorageSync('tubei.server', session.server.url)
    session.kit.wx.setStorageSync('tubei.token', session.server.token('mum'))
  })
  afterAll(async () => {
    require('../../../miniprogram/utils/events').close()
    if (session.server) await session.server.stop()
    fs.rmSync(session.tmp, {recursive: true, force: true})
  })
  return session
}

module.exports = {pairedSession}
