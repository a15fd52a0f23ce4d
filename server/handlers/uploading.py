"""Receiving a streamed multipart upload inside a handler."""

from __future__ import annotations

import asyncio
import sys

from .. import errors
from .base import ApiHandler
from .multipart import MultipartUpload, Result

# Room above the upload limit so that our own 413 answers before Tornado's own
# limit cuts a chunked body off with a bare 400.
TORNADO_LIMIT_SLACK = 16 * 1024 * 1024


class UploadMixin(ApiHandler):
    """Streams a POST body through MultipartUpload; `receive()` commits it."""

    upload: MultipartUpload | None = None

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method == "POST":
            self.begin_upload()

    def begin_upload(self) -> None:
        limit = self.services.settings.max_upload_size
        length = self.request.headers.get("Content-Length")
        if length is not None:
            if not length.isdigit():
                raise errors.ApiError(errors.BAD_REQUEST, "Content-Length is not a number.")
            if int(length) > limit:
                raise errors.ApiError(
                    errors.PAYLOAD_TOO_LARGE, f"An upload may be at most {limit} bytes."
                )
        self.request.connection.set_max_body_size(limit + TORNADO_LIMIT_SLACK)  # type: ignore[union-attr]
        self.upload = MultipartUpload(
            self.services.library, self.user, self.request.headers.get("Content-Type", "")
        )

    async def data_received(self, chunk: bytes) -> None:
        upload = self.upload
        if upload is None or self._finished:
            return
        try:
            if upload.received + len(chunk) > self.services.settings.max_upload_size:
                raise errors.ApiError(errors.PAYLOAD_TOO_LARGE)
            await upload.feed(chunk)
        except Exception:
            self.upload = None
            await upload.abort()
            # Answer now and let Tornado close the connection, rather than
            # reading the rest of a body that is already refused.
            self.log_exception(*sys.exc_info())
            self.send_error(500, exc_info=sys.exc_info())

    async def receive(self) -> Result:
        upload = self.upload
        if upload is None:
            raise errors.ApiError(errors.NO_FILES)
        try:
            return await upload.finish()
        finally:
            self.upload = None
            await upload.abort()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        upload, self.upload = self.upload, None
        if upload is not None:
            task = asyncio.get_running_loop().create_task(upload.abort())
            _aborting.add(task)
            task.add_done_callback(_aborting.discard)


_aborting: set[asyncio.Task[None]] = set()
