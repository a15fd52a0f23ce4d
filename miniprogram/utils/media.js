// The URLs <image>, previewImage and previewMedia load without headers: an image's
// `signed_urls` from the server (each good for `expires_in` seconds), made absolute.
// null for an older server that gives none: the pages then download with the token.
const {url} = require('./request')

// Refresh a little before the server's expiry, so a URL is never handed over dying.
const MARGIN_MS = 60 * 1000

// {thumbnail, preview, original, until} for an image JSON received at `now`, or null.
function signedMedia(image, now = Date.now()) {
  const signed = image && image.signed_urls
  if (!signed || !signed.original) return null
  return {
    thumbnail: signed.thumbnail ? url(signed.thumbnail) : '',
    preview: signed.preview ? url(signed.preview) : '',
    original: url(signed.original),
    until: now + Math.max(0, Number(signed.expires_in) || 0) * 1000 - MARGIN_MS,
  }
}

function isFresh(media, now = Date.now()) {
  return Boolean(media) && now < media.until
}

module.exports = {signedMedia, isFresh, MARGIN_MS}
