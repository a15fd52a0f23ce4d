"""`/api/v1/uploads/`: tus 1.0 resumable uploads.

The core protocol with the creation, creation-with-upload, termination, checksum
and expiration extensions. The protocol's rules live here (versions, headers,
offsets, lengths, checksums, the method override); what outlives a request (rows,
writers, locks, progress) lives in `UploadService`. Bodies stream to disk a chunk
at a time.

Tubei's additions: a finished upload answers with `Tubei-Image-Id` (the photo's
id, its SHA-256) and `Tubei-Duplicate`, on the last PATCH and on later HEADs; the
`sha256` metadata key makes the server check the whole file; and
`X-HTTP-Method-Override` on a POST stands for PATCH, DELETE or HEAD, for clients
such as WeChat's `wx.request` that cannot send them.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import tornado.web
from tornado.httputil import format_timestamp

from .. import errors, metrics
from ..catalog import UploadRecord
from ..services.transfers import Transfer
from ..views import API
from .base import ApiHandler
from .tus_headers import (
    CHECKSUMS,
    OFFSET_STREAM,
    REASONS,
    TUS_EXTENSIONS,
    TUS_VERSION,
    Checksum,
    TusError,
    format_metadata,
    parse_checksum,
    parse_metadata,
    parse_number,
)
from .uploading import TORNADO_LIMIT_SLACK

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

OVERRIDABLE = ("PATCH", "DELETE", "HEAD")
UPLOADS = f"{API}/uploads"
# Requests that carry no upload data still get a body limit (what they send is ignored).
NO_DATA_LIMIT = 64 * 1024


class TusHandler(ApiHandler):
    """What both tus resources share: the version, the override, streaming data in."""

    # The methods this resource answers, after X-HTTP-Method-Override.
    METHODS: ClassVar[tuple[str, ...]] = ()

    method = ""
    transfer: Transfer | None = None
    checksum: Checksum | None = None
    hasher: Hash | None = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Tus-Resumable", TUS_VERSION)

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        super().set_status(status_code, reason or REASONS.get(status_code))

    def allowed_methods(self) -> list[str]:
        return list(self.METHODS)

    def compute_etag(self) -> str | None:
        # Never an ETag (nor a 304 for If-None-Match): HEAD answers describe an upload
        # that changes, and they have no body to tag.
        return None

    def finish_empty(self, status: int) -> None:
        self.clear_header("Content-Type")
        self.set_status(status)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        value = exc_info[1] if exc_info else None
        if isinstance(value, TusError):
            for name, header in value.headers.items():
                self.set_header(name, header)
        if isinstance(value, errors.ApiError) and value.kind is errors.TUS_VERSION_UNSUPPORTED:
            self.set_header("Tus-Version", TUS_VERSION)
        super().write_error(status_code, **kwargs)

    async def prepare(self) -> None:
        self.method = self.request.method or ""
        if self.method == "OPTIONS":
            self.limit_body(NO_DATA_LIMIT)
            return
        await self.authenticate()
        override = self.request.headers.get("X-HTTP-Method-Override")
        if override is not None and self.method == "POST":
            self.method = override.strip().upper()
            if self.method not in OVERRIDABLE:
                raise errors.ApiError(
                    errors.BAD_REQUEST,
                    "X-HTTP-Method-Override on a POST must be PATCH, DELETE or HEAD.",
                )
        if self.method not in self.METHODS:
            raise errors.ApiError(errors.METHOD_NOT_ALLOWED)
        if self.request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise errors.ApiError(errors.TUS_VERSION_UNSUPPORTED)
        # The body streams in after prepare: what it is for is decided here.
        await self.prepare_method()

    async def prepare_method(self) -> None:
        self.limit_body(NO_DATA_LIMIT)

    async def options(self, *args: str) -> None:
        self.set_header("Tus-Version", TUS_VERSION)
        self.set_header("Tus-Extension", TUS_EXTENSIONS)
        self.set_header("Tus-Max-Size", str(self.services.settings.max_upload_size))
        self.set_header("Tus-Checksum-Algorithm", ",".join(CHECKSUMS))
        self.finish_empty(204)

    # the body ------------------------------------------------------------------

    def content_type(self) -> str:
        return self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def content_length(self) -> int | None:
        raw = self.request.headers.get("Content-Length")
        return None if raw is None else parse_number("Content-Length", raw)

    def has_body(self) -> bool:
        return bool(self.content_length()) or "Transfer-Encoding" in self.request.headers

    def upload_checksum(self) -> Checksum | None:
        header = self.request.headers.get("Upload-Checksum")
        return None if header is None else parse_checksum(header)

    def stream_into(self, transfer: Transfer, checksum: Checksum | None) -> None:
        self.transfer = transfer
        self.checksum = checksum
        self.hasher = None if checksum is None else CHECKSUMS[checksum.algorithm]()
        self.limit_body(transfer.room + TORNADO_LIMIT_SLACK)

    async def data_received(self, chunk: bytes) -> None:
        transfer = self.transfer
        if transfer is None or self._finished:
            return
        try:
            if len(chunk) > transfer.room:
                raise errors.ApiError(
                    errors.UPLOAD_TOO_LARGE, "The data goes past the upload's Upload-Length."
                )
            if self.hasher is None:
                await transfer.write(chunk)
            else:
                loop = asyncio.get_running_loop()
                hashing = loop.run_in_executor(self.services.io_executor, self.hasher.update, chunk)
                await asyncio.gather(transfer.write(chunk), hashing)
        except Exception as error:
            if self.transfer is not transfer:
                return  # the connection closed meanwhile; that ends the transfer
            self.transfer = None
            await transfer.discard()
            # Answer now and let Tornado close the connection, rather than read the
            # rest of a body that is already refused.
            self.log_exception(*sys.exc_info())
            failure = self.explained(error, transfer)
            self.send_error(500, exc_info=(type(failure), failure, None))

    def explained(self, error: Exception, transfer: Transfer) -> Exception:
        """The error as the client should read it (a full disk says where to resume)."""
        return error

    async def settle(self, transfer: Transfer) -> UploadRecord:
        """The body has arrived: check it, keep it, and ingest the upload once whole."""
        if transfer.complete:
            upload = transfer.upload
        elif (
            self.hasher is not None
            and self.checksum is not None
            and (self.hasher.digest() != self.checksum.digest)
        ):
            await transfer.discard()
            raise errors.ApiError(
                errors.CHECKSUM_MISMATCH,
                f"The data does not match its {self.checksum.algorithm} in Upload-Checksum; "
                "it was discarded: send it again.",
            )
        else:
            try:
                upload = await transfer.keep()
            except errors.ApiError as error:
                raise self.explained(error, transfer) from None
            if upload.complete:
                metrics.count_upload(self.application, "tus", upload.length, upload.duplicate)
        self.set_header("Upload-Offset", str(upload.offset))
        self.describe_outcome(upload)
        return upload

    def describe_outcome(self, upload: UploadRecord) -> None:
        self.set_header("Upload-Expires", format_timestamp(upload.expires_at))
        if upload.image_sha256 is not None:
            self.set_header("Tubei-Image-Id", upload.image_sha256)
            self.set_header("Tubei-Duplicate", "true" if upload.duplicate else "false")

    def take_transfer(self) -> Transfer | None:
        transfer, self.transfer = self.transfer, None
        return transfer

    def on_connection_close(self) -> None:
        super().on_connection_close()
        transfer = self.take_transfer()
        if transfer is not None:
            # tusd's rule: without a checksum, what arrived is good and is kept,
            # so the client resumes from there; with one, it cannot be checked.
            self.services.uploads.interrupted(transfer, keep=self.checksum is None)

    def on_finish(self) -> None:
        transfer = self.take_transfer()
        if transfer is not None:
            self.services.uploads.interrupted(transfer, keep=False)


@tornado.web.stream_request_body
class UploadsHandler(TusHandler):
    """`/uploads/`: OPTIONS (discovery) and POST (creation, with or without data)."""

    METHODS = ("OPTIONS", "POST")
    created: UploadRecord | None = None

    async def prepare_method(self) -> None:
        headers = self.request.headers
        if "Upload-Defer-Length" in headers:
            raise errors.ApiError(errors.DEFER_LENGTH_UNSUPPORTED)
        length = parse_number("Upload-Length", headers.get("Upload-Length"))
        limit = self.services.settings.max_upload_size
        if length > limit:
            raise errors.ApiError(
                errors.UPLOAD_TOO_LARGE, f"An upload may be at most {limit} bytes."
            )
        if length == 0:
            raise errors.ApiError(errors.EMPTY_FILE)
        metadata = parse_metadata(headers.get("Upload-Metadata", ""))
        with_data = self.content_type() == OFFSET_STREAM
        if not with_data and self.has_body():
            raise errors.ApiError(errors.INVALID_CONTENT_TYPE)
        checksum = self.upload_checksum() if with_data else None
        declared = self.content_length()
        if declared is not None and declared > length:
            raise errors.ApiError(
                errors.UPLOAD_TOO_LARGE, "The data goes past the upload's Upload-Length."
            )
        self.created = await self.services.uploads.create(self.user, length, metadata)
        if with_data:
            transfer = await self.services.uploads.begin(self.user, self.created.id)
            self.stream_into(transfer, checksum)
        else:
            self.limit_body(NO_DATA_LIMIT)

    async def post(self) -> None:
        assert self.created is not None
        if self.content_type() == OFFSET_STREAM:
            transfer = self.take_transfer()
            if transfer is None:
                return  # the connection is gone
            await self.settle(transfer)
        else:
            self.describe_outcome(self.created)
        self.set_header("Location", f"{UPLOADS}/{self.created.id}")
        self.finish_empty(201)

    def on_connection_close(self) -> None:
        transfer = self.take_transfer()
        if transfer is not None and self.created is not None:
            # The client never learnt where this upload is: nobody can resume it.
            self.services.uploads.abandon(self.created.id, transfer)
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.created is not None and self.get_status() >= 400:
            # Refused data (checksum, size, not an image): the creation failed as a whole.
            self.services.uploads.abandon(self.created.id, self.take_transfer())
        super().on_finish()


@tornado.web.stream_request_body
class UploadHandler(TusHandler):
    """`/uploads/{id}`: HEAD (where is it), PATCH (more data), DELETE (termination)."""

    METHODS = ("OPTIONS", "HEAD", "PATCH", "DELETE")

    async def prepare_method(self) -> None:
        if self.method != "PATCH":
            self.limit_body(NO_DATA_LIMIT)
            return
        if self.content_type() != OFFSET_STREAM:
            raise errors.ApiError(errors.INVALID_CONTENT_TYPE)
        offset = parse_number("Upload-Offset", self.request.headers.get("Upload-Offset"))
        checksum = self.upload_checksum()
        declared = self.content_length()
        transfer = await self.services.uploads.begin(self.user, self.path_args[0])
        try:
            if offset != transfer.offset:
                raise TusError(
                    errors.OFFSET_MISMATCH,
                    f"Upload-Offset is {offset} but the upload is at {transfer.offset}: "
                    "resume from there.",
                    headers={"Upload-Offset": str(transfer.offset)},
                )
            if declared is not None and declared > transfer.room:
                raise errors.ApiError(
                    errors.UPLOAD_TOO_LARGE,
                    f"The data goes past the upload's Upload-Length: {transfer.room} bytes "
                    "are left.",
                )
        except BaseException:
            await transfer.discard()
            raise
        self.stream_into(transfer, checksum)

    def explained(self, error: Exception, transfer: Transfer) -> Exception:
        if isinstance(error, errors.ApiError) and error.kind is errors.INSUFFICIENT_STORAGE:
            # The bytes of this request were cut; those before it are kept.
            return TusError(
                errors.INSUFFICIENT_STORAGE,
                "The server's disk is full: the data of this request was not kept. The "
                f"upload stays at offset {transfer.start}: resume from there once space "
                "is freed.",
                headers={"Upload-Offset": str(transfer.start)},
            )
        if isinstance(error, errors.ApiError) and error.kind is errors.STORAGE_UNAVAILABLE:
            unavailable = TusError(
                errors.STORAGE_UNAVAILABLE,
                "The server's object storage cannot be reached just now: the data of this "
                f"request was not kept. The upload stays at offset {transfer.start}: resume "
                "from there after Retry-After seconds.",
                headers={"Upload-Offset": str(transfer.start)},
            )
            unavailable.retry_after = error.retry_after
            return unavailable
        return error

    async def head(self, upload_id: str) -> None:
        upload = await self.services.uploads.get(self.user, upload_id)
        self.set_header("Upload-Offset", str(upload.offset))
        self.set_header("Upload-Length", str(upload.length))
        if upload.metadata:
            self.set_header("Upload-Metadata", format_metadata(upload.metadata))
        self.describe_outcome(upload)
        self.finish_empty(200)

    async def patch(self, upload_id: str) -> None:
        transfer = self.take_transfer()
        if transfer is None:
            return  # the connection is gone
        await self.settle(transfer)
        self.finish_empty(204)

    async def delete(self, upload_id: str) -> None:
        await self.services.uploads.terminate(self.user, upload_id)
        self.finish_empty(204)

    async def post(self, upload_id: str) -> None:
        # Only with X-HTTP-Method-Override (prepare refuses a plain POST here).
        if self.method == "PATCH":
            await self.patch(upload_id)
        elif self.method == "DELETE":
            await self.delete(upload_id)
        else:
            await self.head(upload_id)
