// One wx kit and one real server for a test file:
//   const session = pairedSession('tubei-x-')  the phone already paired as `mum`
//   const session = freshSession('tubei-x-')   a phone never paired (the test pairs it)
// then `const {kit, server, tmp} = session` inside each test (they exist once beforeAll
// has run).
const fs = require('fs')
const os = require('os')
const path = require('path')
const {createKit} = require('./wx')
const {startServer} = require('./server')

// kitOptions: createKit's (phone, suspendAfter, socketsCloseAfter). serverOptions:
// startServer's (extraArgs), or a function giving them, called in beforeAll, for
// options that exist only once an earlier beforeAll has run.
function freshSession(prefix, {kitOptions = {}, serverOptions = {}} = {}) {
  const session = {}
  beforeAll(async () => {
    session.tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    session.kit = createKit(Object.assign({tmpDir: session.tmp}, kitOptions))
    global.wx = session.kit.wx // replaces the stub miniprogram-simulate installs
    session.server = await startServer(typeof serverOptions === 'function' ? serverOptions() : serverOptions)
  })
  afterAll(async () => {
    require('../../../miniprogram/utils/events').close()
    if (session.server) await session.server.stop()
    if (session.tmp) fs.rmSync(session.tmp, {recursive: true, force: true})
  })
  return session
}

function pairedSession(prefix, kitOptions = {}) {
  const session = freshSession(prefix, {kitOptions})
  beforeAll(() => {
    session.kit.wx.setStorageSync('tubei.server', session.server.url)
    session.kit.wx.setStorageSync('tubei.token', session.server.token('mum'))
  })
  return session
}

module.exports = {freshSession, pairedSession}
