/**
 * WeChat login from the settings page: offered only when the server says it is
 * configured; wx.login's code goes to the real server, which asks the WeChat
 * stand-in (a local HTTP server) and answers with a Tubei token.
 * @jest-environment jsdom
 */
const {freshSession} = require('./kit/session')
const {startServer} = require('./kit/server')
const {startWechat} = require('./kit/wechat')
const {loadPage, until, text} = require('./kit/pages')

let wechat
let plain // a server without WeChat login

beforeAll(async () => {
  ;[wechat, plain] = await Promise.all([startWechat(), startServer()])
})

afterAll(async () => {
  await Promise.all([plain && plain.stop(), wechat && wechat.stop()])
})

// The session's server asks the WeChat stand-in, which exists once the hook above has run.
const session = freshSession('tubei-wechat-', {serverOptions: () => ({extraArgs: wechat.args})})

beforeAll(() => {
  session.kit.wechat = wechat
})

test('a server without WeChat login shows no WeChat button', async () => {
  const settings = loadPage('settings')
  settings.setData({server: plain.url})
  await settings.instance.onServerBlur()
  expect(settings.data.wechat).toBe(false)
  expect(settings.querySelector('.btn-wechat')).toBeFalsy()
})

test('sign in with WeChat: the button appears, the token works, the same openid is the same user', async () => {
  const {kit, server} = session
  const settings = loadPage('settings')
  settings.instance.onLoad()
  settings.setData({server: server.url})
  await settings.instance.onServerBlur()
  expect(settings.data.wechat).toBe(true)
  expect(text(settings, '.btn-wechat')).toBe('微信登录')

  kit.ui.openid = 'o-grandma'
  settings.querySelector('.btn-wechat').dispatchEvent('tap')
  await until(() => settings.data.status === 'paired', {what: 'signed in'})
  const token = kit.wx.getStorageSync('tubei.token')
  expect(token).toMatch(/\S{20,}/)
  // Tubei asked WeChat with its AppID and the one-time code; the phone never saw a secret.
  const call = wechat.calls.pop()
  expect(call.query.appid).toBe(wechat.appid)
  expect(call.query.grant_type).toBe('authorization_code')
  const loginCall = kit.log.filter(e => e.api === 'request' && e.url.endsWith('/auth/wechat')).pop()
  expect(loginCall.method).toBe('POST')
  expect(JSON.stringify(kit.log)).not.toContain(wechat.secret)

  // A second phone of the same WeChat user lands in the same library.
  const me = async t => new Promise(resolve => kit.wx.request({
    url: `${server.url}/api/v1/devices`,
    header: {Authorization: `Bearer ${t}`},
    success: res => resolve(res.data),
  }))
  settings.instance.unpair()
  settings.setData({server: server.url})
  settings.querySelector('.btn-wechat').dispatchEvent('tap')
  await until(() => settings.data.status === 'paired', {what: 'signed in again'})
  const second = kit.wx.getStorageSync('tubei.token')
  expect(second).not.toBe(token)
  const devices = await me(second)
  expect(devices.items).toHaveLength(2)
})

test('a code WeChat refuses is explained in Chinese', async () => {
  const {kit, server} = session
  kit.wechat = null // wx.login hands out a code the stand-in never issued
  const settings = loadPage('settings')
  settings.setData({server: server.url})
  await settings.instance.onServerBlur()
  await settings.instance.loginWechat()
  kit.wechat = wechat
  expect(settings.data.status).toBe('unpaired')
  expect(settings.data.error).toBe('微信登录已失效，请再试一次')
})
