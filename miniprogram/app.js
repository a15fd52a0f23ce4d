// Network and protocol code lives in utils/; the app only starts the event socket
// once paired, and lets an interrupted tus upload be found again by the backup page.
const api = require('./utils/request')
const events = require('./utils/events')

App({
  onLaunch() {
    if (api.isPaired()) events.connect()
  },
})
