// Whether the mini-program is in front. WeChat suspends its JS thread about 5 s after
// it goes to the background (calls then fail with `interrupted`) and resumes it on
// return; app.js reports both here, and the uploader and the event socket listen.
const listeners = {show: [], hide: []}
let hidden = false

function on(type, fn) {
  listeners[type].push(fn)
  return () => {
    listeners[type] = listeners[type].filter(f => f !== fn)
  }
}

function shown() {
  hidden = false
  listeners.show.slice().forEach(fn => fn())
}

function hid() {
  hidden = true
  listeners.hide.slice().forEach(fn => fn())
}

function isHidden() {
  return hidden
}

module.exports = {on, shown, hid, isHidden}
