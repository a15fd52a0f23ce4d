// A stand-in for WeChat's jscode2session, as a real local HTTP server: WeChat's own
// servers cannot be reached from here. It hands out one-time login codes (the kit's
// wx.login asks it, as the WeChat client asks WeChat) and checks what Tubei sends.
const crypto = require('crypto')
const http = require('http')

function startWechat({appid = 'wx-test-appid', secret = 'test-secret'} = {}) {
  const codes = new Map() // code -> openid, until used
  const calls = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://wechat')
    const q = Object.fromEntries(url.searchParams)
    calls.push({path: url.pathname, query: q})
    const answer = body => {
      res.writeHead(200, {'Content-Type': 'application/json'})
      res.end(JSON.stringify(body))
    }
    if (url.pathname !== '/sns/jscode2session') {
      res.writeHead(404)
      return res.end()
    }
    if (q.appid !== appid || q.secret !== secret) return answer({errcode: 40013, errmsg: 'invalid appid'})
    if (q.grant_type !== 'authorization_code') return answer({errcode: 40002, errmsg: 'invalid grant_type'})
    const openid = codes.get(q.js_code)
    if (!openid) return answer({errcode: 40029, errmsg: 'invalid code'})
    codes.delete(q.js_code)
    answer({openid, session_key: crypto.randomBytes(16).toString('base64')})
  })
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => {
    const url = `http://127.0.0.1:${server.address().port}`
    resolve({
      url,
      appid,
      secret,
      calls,
      args: ['--wechat-appid', appid, '--wechat-secret', secret, '--wechat-api', url],
      issue(openid) {
        const code = crypto.randomBytes(12).toString('hex')
        codes.set(code, openid)
        return code
      },
      stop: () => new Promise(done => server.close(done)),
    })
  }))
}

module.exports = {startWechat}
