// What a failed wx.* call means, from its errMsg and errno, and what the person can
// do about it. WeChat's own words stay in the sentence (in brackets) so that a
// screenshot sent to whoever runs the server says what actually happened.

const PRIVACY_ERRNO = 104 // privacy permission is not authorized
const UNDECLARED_ERRNO = 112 // api scope is not declared in the privacy agreement

function errMsg(err) {
  return String((err && (err.errMsg || err.message)) || '')
}

// 'privacy' | 'undeclared' | 'cancel' | 'denied' | 'domain' | 'interrupted' |
// 'offline' | 'timeout' | 'limit' | 'other'
function kind(err) {
  const text = errMsg(err)
  const errno = err && err.errno
  if (errno === PRIVACY_ERRNO || /privacy permission is not authori[sz]ed/i.test(text)) return 'privacy'
  if (errno === UNDECLARED_ERRNO || /not declared in the privacy agreement/i.test(text)) return 'undeclared'
  if (/:fail (cancel|.*cancel$)/i.test(text)) return 'cancel'
  // An album (or other scope) the person refused: only the settings page changes that.
  if (/auth (deny|denied)|authorize:fail|scope unauthorized/i.test(text)) return 'denied'
  if (/url not in domain list/i.test(text)) return 'domain'
  if (/interrupted/i.test(text)) return 'interrupted'
  if (/timeout|timed out/i.test(text)) return 'timeout'
  if (/exceed max (task|socket)/i.test(text)) return 'limit'
  if (/INTERNET_DISCONNECTED|network is down|offline/i.test(text)) return 'offline'
  return 'other'
}

// The cause in WeChat's words, without the "request:fail " prefix.
function cause(err) {
  return errMsg(err).replace(/^[A-Za-z.]+:fail\s*/, '').trim()
}

const NETWORK = {
  domain: reason => `手机不能访问这个地址（${reason}）。局域网服务器要和手机连着同一个 Wi-Fi、在同一网段；` +
    '在外面使用要填已在小程序后台登记的 https 域名。见设置页的“怎样连接服务器”。',
  interrupted: reason => `图备切到了后台，微信中断了连接（${reason}）。回到图备后会自动继续。`,
  offline: reason => `手机没有联网（${reason}）。连上网络后再试。`,
  timeout: reason => `服务器太久没有回应（${reason}）。请确认服务器在运行，稍后再试。`,
  limit: reason => `同时进行的网络请求太多（${reason}），请稍后再试。`,
  privacy: () => '你还没有同意图备的隐私保护指引，这一步无法进行。',
  other: reason => `无法连接服务器${reason ? `（${reason}）` : ''}。请确认电脑上的图备正在运行，` +
    '手机和电脑连着同一个 Wi-Fi（不是访客网络）；iPhone 还要在 设置 → 微信 里打开“本地网络”。',
}

// {code, message} for a network call that failed before any HTTP answer.
function explain(err) {
  const found = kind(err)
  const code = found === 'other' || found === 'cancel' || found === 'denied' ? 'unreachable' : found
  const sentence = NETWORK[code] || NETWORK.other
  return {code, message: sentence(cause(err))}
}

module.exports = {kind, cause, explain, PRIVACY_ERRNO, UNDECLARED_ERRNO}
