// The phone's rules the kit applies before any network use: which URLs WeChat lets a
// mini-program reach (framework → ability → 局域网通信, and the server-domain rules),
// and the JPEG surgery of a chooseMedia that hands over a copy without EXIF.
//
// Tests talk to a real server on 127.0.0.1, so the kit's phone sits on 127.0.0.0/8
// (its own address 127.0.0.100 by default): the server is "on the same Wi-Fi".
// Refusals are tested with addresses elsewhere (10.0.3.5, 192.168.1.5, a domain);
// nothing is ever sent to them — the kit refuses before opening a socket.

const DOMAIN_LISTS = ['request', 'uploadFile', 'downloadFile', 'socket']

function ipv4(host) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  if (!m) return null
  const parts = m.slice(1).map(Number)
  if (parts.some(p => p > 255)) return null
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3]
}

// {ip, netmask, domains}: domains is a list for all four APIs or {request: [...], ...};
// an entry is "host" or "host:port" (then only that port).
function makePhone({ip = '127.0.0.100', netmask = '255.0.0.0', domains = []} = {}) {
  const lists = {}
  DOMAIN_LISTS.forEach(name => {
    lists[name] = (Array.isArray(domains) ? domains : domains[name] || []).map(d => d.toLowerCase())
  })
  if (ipv4(ip) === null || ipv4(netmask) === null) throw new Error(`bad phone address ${ip}/${netmask}`)
  return {ip, netmask, domains: lists}
}

// null when WeChat would let `api` reach `url`, else the reason in WeChat's words.
function refusal(phone, api, url) {
  let parsed
  try {
    parsed = new URL(url)
  } catch (e) {
    return 'invalid url'
  }
  const scheme = parsed.protocol.replace(':', '')
  const host = parsed.hostname.toLowerCase()
  const ip = ipv4(host)
  if (ip !== null) {
    // LAN exception: any scheme, no domain list, but only the phone's own subnet and
    // never the phone itself.
    const mask = ipv4(phone.netmask)
    if (ip === ipv4(phone.ip)) return 'url not in domain list'
    if ((ip & mask) >>> 0 !== (ipv4(phone.ip) & mask) >>> 0) return 'url not in domain list'
    return null
  }
  const secure = api === 'socket' ? 'wss' : 'https'
  if (scheme !== secure) return 'url not in domain list'
  const list = phone.domains[api] || []
  // URL drops a default port (:443); WeChat counts it as written.
  const written = /^[a-z]+:\/\/[^/?#]*?:(\d+)(?:[/?#]|$)/i.exec(url)
  const withPort = written ? `${host}:${written[1]}` : host
  // An entry without a port allows no port in the URL, not even :443.
  return list.includes(withPort) ? null : 'url not in domain list'
}

// A JPEG with its APP1 EXIF segments cut out: the same picture, no metadata — what a
// phone hands over when it re-encodes (pixels aside).
function stripExif(buffer) {
  if (buffer.length < 4 || buffer.readUInt16BE(0) !== 0xffd8) return buffer
  const parts = [buffer.subarray(0, 2)]
  let at = 2
  while (at + 4 <= buffer.length && buffer[at] === 0xff) {
    const marker = buffer[at + 1]
    if (marker === 0xda) break
    const length = buffer.readUInt16BE(at + 2)
    const isExif = marker === 0xe1 && buffer.subarray(at + 4, at + 10).toString('latin1') === 'Exif\0\0'
    if (!isExif) parts.push(buffer.subarray(at, at + 2 + length))
    at += 2 + length
  }
  parts.push(buffer.subarray(at))
  return Buffer.concat(parts)
}

module.exports = {makePhone, refusal, stripExif, ipv4, DOMAIN_LISTS}
