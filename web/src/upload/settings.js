// The uploader's numbers, in one place: the web app and scripts/bench read them.
export const MiB = 1024 * 1024
// Bytes per tus PATCH. The server takes any size up to Upload-Length and fsyncs once a
// PATCH, so a big chunk costs little; a cut loses nothing either way (without a
// checksum the server keeps what arrived).
export const CHUNK_SIZE = 8 * MiB
// What the hashing worker reads at a time: never the whole file in memory.
export const HASH_SLICE = 4 * MiB
// Files hashed at once (one Web Worker each) and uploads at once.
export const HASHERS = 2
export const PARALLEL_UPLOADS = 3
// POST /images/check takes at most 5000 hashes a request.
export const CHECK_BATCH = 1000
// tus-js-client retries a network error or a 5xx after these delays, then fails the file.
export const RETRY_DELAYS = [0, 1000, 3000]
// A file the network dropped (after RETRY_DELAYS) is sent again when the browser is back
// online, when another request gets through, or after these pauses, the last repeated.
export const RECONNECT_DELAYS = [10000, 30000, 60000, 120000]
