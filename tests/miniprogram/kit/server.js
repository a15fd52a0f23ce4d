// A real Tubei server for the page tests: `python -m server serve` on a free port
// with a temporary data folder, plus the CLI for pairing codes and tokens.
const {spawn, execFileSync} = require('child_process')
const fs = require('fs')
const http = require('http')
const net = require('net')
const os = require('os')
const path = require('path')

const ROOT = path.resolve(__dirname, '../../..')
const PYTHON = process.env.TUBEI_PYTHON || path.join(ROOT, '.venv/bin/python')

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

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, {agent: false}, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    }).on('error', reject)
  })
}

// extraArgs: more `serve` flags (e.g. WeChat login pointed at the kit's stand-in).
// Video previews are off: a preview made in the background would change, mid-journey,
// how the gallery plays an HEVC video (tests/miniprogram/video_rules.test.js covers a
// video that has one).
async function startServer({extraArgs = []} = {}) {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'tubei-mp-'))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = spawn(PYTHON, ['-m', 'server', 'serve', '--data', data, '--host', '127.0.0.1',
    '--port', String(port), '--log-level', 'warning', '--gc-interval', '100000',
    '--video-previews', 'off', ...extraArgs],
  {cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += chunk })
  const deadline = Date.now() + 20000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`)
    try {
      if ((await get(`${url}/api/v1/health`)) === 200) break
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`server did not start: ${stderr}`)
    }
    await new Promise(r => setTimeout(r, 100))
  }
  const cli = (...args) => execFileSync(PYTHON, ['-m', 'server', ...args, '--data', data],
    {cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  return {
    url,
    data,
    pairingCode(user = 'mum') {
      const out = cli('pair', '--user', user, '--public-url', url)
      return /tubei:\/\/pair\?\S+/.exec(out)[0]
    },
    token(user = 'mum') {
      return cli('token', '--user', user).trim().split('\n').pop()
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await new Promise(resolve => child.once('exit', resolve))
      }
      fs.rmSync(data, {recursive: true, force: true})
    },
  }
}

// JPEG fixtures made at test time with Pillow: noise, so each is unique and big
// enough for progress to be seen rising; `taken` ("2023:07:14 18:30:05") gives one
// the EXIF a camera writes.
function makePhotos(dir, specs) {
  const script = `
import random, sys, json
from PIL import Image
for spec in json.loads(sys.argv[1]):
    rnd = random.Random(spec["seed"])
    w, h = spec["width"], spec["height"]
    img = Image.frombytes("RGB", (w, h), rnd.randbytes(w * h * 3))
    exif = Image.Exif()
    if spec.get("taken"):
        exif[0x010F] = "TubeiCam"
        exif.get_ifd(0x8769)[0x9003] = spec["taken"]  # DateTimeOriginal
    extra = {"exif": exif} if spec.get("taken") else {}
    img.save(spec["path"], "JPEG", quality=spec.get("quality", 92), **extra)
`
  const list = specs.map((s, i) => Object.assign({seed: i + 1}, s, {path: path.join(dir, s.name)}))
  execFileSync(PYTHON, ['-c', script, JSON.stringify(list)], {cwd: ROOT})
  return list.map(s => ({path: s.path, width: s.width, height: s.height}))
}

// Real videos made at test time with PyAV (the server's venv): `seconds` of 160x120
// at 10 fps, H.264 MP4 unless `codec` ('libx265' in a MOV) says otherwise; `size`
// pads the file to that many bytes with a trailing `free` box (still a valid MP4,
// written sparse, so a 150 MB video costs no time). `thumb` is a JPEG of the first
// frame, as chooseMedia's thumbTempFilePath.
function makeVideos(dir, specs) {
  const script = `
import json, os, struct, sys
import av
from PIL import Image
for spec in json.loads(sys.argv[1]):
    codec = spec.get("codec", "libx264")
    out = av.open(spec["path"], "w", format="mov" if spec["path"].endswith(".mov") else "mp4")
    stream = out.add_stream(codec, rate=10)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    for i in range(int(spec["seconds"] * 10)):
        frame = Image.new("RGB", (160, 120), ((spec["seed"] * 53 + i * 9) % 256, 90, 160))
        if i == 0:
            frame.save(spec["thumb"], "JPEG")
        for packet in stream.encode(av.VideoFrame.from_image(frame)):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    have = os.path.getsize(spec["path"])
    if spec.get("size", 0) > have + 8:
        with open(spec["path"], "ab") as f:
            f.write(struct.pack(">I4s", spec["size"] - have, b"free"))
            f.truncate(spec["size"])
`
  const list = specs.map((s, i) => Object.assign({seed: i + 1, seconds: 2}, s,
    {path: path.join(dir, s.name), thumb: path.join(dir, `${s.name}.jpg`)}))
  // the encoders' chatter on stderr stays out of the test output (an error still throws)
  execFileSync(PYTHON, ['-c', script, JSON.stringify(list)], {cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe']})
  return list.map(s => ({path: s.path, width: 160, height: 120, duration: s.seconds, thumb: s.thumb, fileType: 'video'}))
}

// Put a photo on the server directly, as another device would.
function uploadDirect(server, token, filePath) {
  return new Promise((resolve, reject) => {
    const boundary = 'kitdirect'
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="${path.basename(filePath)}"\r\nContent-Type: image/jpeg\r\n\r\n`),
      fs.readFileSync(filePath),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ])
    const req = http.request(`${server.url}/api/v1/images`, {
      method: 'POST',
      agent: false, // a connection of its own: an idle kept-alive one may be closing (--header-timeout)
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': body.length,
      },
    }, res => {
      const chunks = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(Buffer.concat(chunks))) : reject(new Error(Buffer.concat(chunks).toString()))))
    })
    req.on('error', reject)
    req.end(body)
  })
}

module.exports = {startServer, makePhotos, makeVideos, uploadDirect, PYTHON, ROOT}
