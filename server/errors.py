"""One catalogue of errors: a code, an HTTP status and a sentence.

Services raise `ApiError`; handlers turn it into
`{"error": {"code": ..., "message": ...}}` with the matching status.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorKind:
    code: str
    status: int
    message: str


class ApiError(Exception):
    def __init__(
        self, kind: ErrorKind, message: str | None = None, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message or kind.message)
        self.kind = kind
        self.message = message or kind.message
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        return self.kind.code

    @property
    def status(self) -> int:
        return self.kind.status

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


BAD_REQUEST = ErrorKind("bad_request", 400, "The request is malformed.")
INVALID_JSON = ErrorKind("invalid_json", 400, "The request body is not valid JSON.")
INVALID_ARGUMENT = ErrorKind("invalid_argument", 400, "A parameter has an invalid value.")
INVALID_CURSOR = ErrorKind("invalid_cursor", 400, "The cursor is not one this server issued.")
INVALID_ID = ErrorKind("invalid_id", 400, "An image id is 64 lowercase hexadecimal digits.")
INVALID_MD5 = ErrorKind("invalid_md5", 400, "An md5 is 32 hexadecimal digits.")
BAD_MULTIPART = ErrorKind("bad_multipart", 400, "The multipart body is malformed.")
NO_FILES = ErrorKind("no_files", 400, "The request carries no file.")
EMPTY_FILE = ErrorKind("empty_file", 400, "The file is empty.")
UPLOAD_INTERRUPTED = ErrorKind(
    "upload_interrupted", 400, "The connection closed before the upload was complete."
)
UNAUTHORIZED = ErrorKind("unauthorized", 401, "A valid bearer token is required.")
INVALID_PAIRING_CODE = ErrorKind(
    "invalid_pairing_code", 401, "The pairing code is wrong, used or expired."
)
SIGNED_URL_INVALID = ErrorKind(
    "signed_url_invalid",
    403,
    "This media URL's signature is wrong, for another file or user, or expired: "
    "fetch the image again for fresh URLs.",
)
NOT_FOUND = ErrorKind("not_found", 404, "Nothing is here.")
DEVICE_NOT_FOUND = ErrorKind("device_not_found", 404, "No such device among yours.")

# WeChat login (jscode2session)
INVALID_WECHAT_CODE = ErrorKind(
    "invalid_wechat_code",
    401,
    "WeChat refused the login code: it is wrong, used or expired. Call wx.login again.",
)
WECHAT_LOGIN_REFUSED = ErrorKind(
    "wechat_login_refused", 403, "WeChat refused to let this account log in."
)
WECHAT_LOGIN_DISABLED = ErrorKind(
    "wechat_login_disabled", 404, "WeChat login is not set up on this server: pair instead."
)
WECHAT_RATE_LIMITED = ErrorKind(
    "wechat_rate_limited",
    429,
    "WeChat is limiting logins for this account; try again in a minute.",
)
WECHAT_UNAVAILABLE = ErrorKind(
    "wechat_unavailable",
    502,
    "WeChat's login service did not answer properly; try again in a little while.",
)
IMAGE_NOT_FOUND = ErrorKind("image_not_found", 404, "No such image in your library.")
NO_THUMBNAIL = ErrorKind(
    "no_thumbnail",
    404,
    "This photo has no thumbnail: it could not be decoded. The original is kept.",
)
NO_VIDEO_PREVIEW = ErrorKind(
    "no_video_preview",
    404,
    "This video has no playable preview (yet, or at all): play its original.",
)
NO_MOTION_VIDEO = ErrorKind(
    "no_motion_video",
    404,
    "This image is not a motion photo: it has no video part.",
)
METHOD_NOT_ALLOWED = ErrorKind("method_not_allowed", 405, "This method is not allowed here.")
TOO_MANY_ATTEMPTS = ErrorKind(
    "too_many_attempts", 429, "Too many attempts; wait a little and try again."
)
TOO_MANY_PAIRING_CODES = ErrorKind(
    "too_many_pairing_codes",
    429,
    "This account has as many pairing codes waiting as it may; use one, or wait for one to expire.",
)
HEADERS_TOO_LARGE = ErrorKind(
    "headers_too_large",
    431,
    "The request line and headers are larger than this server accepts.",
)
TOO_MANY_UPLOADS = ErrorKind(
    "too_many_uploads",
    429,
    "You have too many unfinished uploads: finish or delete some (DELETE), or wait for "
    "them to expire, then try again.",
)
PAYLOAD_TOO_LARGE = ErrorKind("payload_too_large", 413, "The request body is too large.")
UNSUPPORTED_MEDIA_TYPE = ErrorKind(
    "unsupported_media_type", 415, "The file is not a photo or video format Tubei keeps."
)
RANGE_NOT_SATISFIABLE = ErrorKind(
    "range_not_satisfiable", 416, "The requested range is outside the file."
)
INSUFFICIENT_STORAGE = ErrorKind(
    "insufficient_storage",
    507,
    "The server's disk is full: the upload was not kept. Try again once space is freed.",
)
IMAGE_DAMAGED = ErrorKind(
    "image_damaged",
    410,
    "This photo's original is damaged on the server (missing or corrupted), so it is not "
    "served. Upload the photo again from a device that has it to repair it.",
)

# tus resumable uploads
INVALID_HEADER = ErrorKind("invalid_header", 400, "A tus header is missing or malformed.")
INVALID_METADATA = ErrorKind(
    "invalid_metadata",
    400,
    "Upload-Metadata must be comma-separated pairs of a key and a base64 value.",
)
DEFER_LENGTH_UNSUPPORTED = ErrorKind(
    "defer_length_unsupported", 400, "Upload-Defer-Length is not supported: send Upload-Length."
)
CHECKSUM_ALGORITHM_UNSUPPORTED = ErrorKind(
    "checksum_algorithm_unsupported",
    400,
    "Upload-Checksum must use one of the algorithms in Tus-Checksum-Algorithm.",
)
UPLOAD_NOT_FOUND = ErrorKind("upload_not_found", 404, "No such upload.")
OFFSET_MISMATCH = ErrorKind(
    "offset_mismatch",
    409,
    "Upload-Offset is not the upload's offset: ask with HEAD and resume from there.",
)
UPLOAD_EXPIRED = ErrorKind("upload_expired", 410, "This upload has expired: start a new one.")
TUS_VERSION_UNSUPPORTED = ErrorKind(
    "tus_version_unsupported", 412, "This server speaks tus 1.0.0: send Tus-Resumable: 1.0.0."
)
UPLOAD_TOO_LARGE = ErrorKind(
    "upload_too_large", 413, "The upload is larger than this server accepts."
)
INVALID_CONTENT_TYPE = ErrorKind(
    "invalid_content_type", 415, "Upload data must be sent as application/offset+octet-stream."
)
UPLOAD_LOCKED = ErrorKind(
    "upload_locked", 423, "Another request is writing to this upload: try again when it ends."
)
CHECKSUM_MISMATCH = ErrorKind(
    "checksum_mismatch", 460, "The data does not match its checksum and was discarded."
)
BACKEND_UNAVAILABLE = ErrorKind(
    "backend_unavailable",
    503,
    "The server's database cannot be reached just now; nothing of the request was "
    "written. Try again after Retry-After seconds.",
)
STORAGE_UNAVAILABLE = ErrorKind(
    "storage_unavailable",
    503,
    "The server's object storage cannot be reached just now; nothing of the request was "
    "kept as stored. Try again after Retry-After seconds.",
)
INTERNAL = ErrorKind("internal_error", 500, "The server failed; the request was not completed.")

_BY_STATUS = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    416: RANGE_NOT_SATISFIABLE,
    431: HEADERS_TOO_LARGE,
    507: INSUFFICIENT_STORAGE,
}


def for_status(status: int) -> ErrorKind:
    """The catalogue entry for an HTTP status raised by Tornado itself."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return INTERNAL
    return ErrorKind("http_" + str(status), status, "The request could not be completed.")
