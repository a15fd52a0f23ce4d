// The backup's counts, and while one runs: items left and seconds left (null until
// known, from the bytes sent since the batch started).
function summarize(items, batch) {
  const count = state => items.filter(i => i.state === state).length
  const settled = count('done') + count('exists') + count('failed') + count('missing')
  const summary = {done: count('done'), exists: count('exists'), failed: count('failed'),
    missing: count('missing'), paused: count('paused'), active: items.length - settled,
    eta: null}
  if (batch && summary.active) {
    const since = items.filter(i => i.state === 'done' && i.doneAt >= batch.started)
    const inBatch = i => ['uploading', 'waiting', 'paused', 'hashing'].includes(i.state)
    const sent = since.reduce((sum, i) => sum + i.size, 0) +
      items.filter(i => i.state === 'uploading').reduce((sum, i) => sum + i.size * i.progress / 100, 0)
    const left = items.filter(inBatch).reduce((sum, i) => sum + i.size * (1 - i.progress / 100), 0)
    const seconds = (Date.now() - batch.started) / 1000
    if (sent > 0 && seconds >= 1) summary.eta = Math.ceil(left / (sent / seconds))
  }
  return summary
}

module.exports = {summarize}
