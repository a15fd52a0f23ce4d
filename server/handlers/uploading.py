"""Receiving a streamed multipart upload inside a handler."""

from __future__ import annotations

import asyncio
import sys

from .. import errors, metrics
from ..services.ingest import Result, UploadReporter
from .base import ApiHandler
from .multipart import MultipartUpload

MAX_TRANSFER_ID = 128


def transfer_id(handler: ApiHandler, header: str, argument: str) -> str | None:
    """A client-chosen id tying progress events to a transfer (header or query)."""
    value = handler.request.headers.get(header) or handler.get_query_argument(argument, None)
    if value is None:
        return None
    if not (0 < len(value) <= MAX_TRANSFER_ID and value.isprintable()):
        raise errors.ApiError(
            errors.INVALID_ARGUMENT,
            f"{header} must be 1 to {MAX_TRANSFER_ID} printable characters.",
        )
    return value


# Room above the upload limit so that our own 413 answers before Tornado's own
# limit cuts a chunked body off with a bare 400.
TORNADO_LIMIT_SLACK = 16 * 1024 * 1024


class UploadMixin(ApiHandler):
    """Streams a POST body through MultipartUpload; `receive()` commits it."""

    upload: MultipartUpload | None = None
    upload_reporter: UploadReporter | None = None
    transport = "multipart"  # for the metrics

    def authenticated_body_limit(self) -> int:
        if self.request.method == "POST":
            return self.services.settings.max_upload_size + TORNADO_LIMIT_SLACK
        return super().authenticated_body_limit()

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method == "POST":
            self.begin_upload()

    def begin_upload(self) -> None:
        limit = self.services.settings.max_upload_size
        length = self.request.headers.get("Content-Length")
        if length is not None and not length.isdigit():
            raise errors.ApiError(errors.BAD_REQUEST, "Content-Length is not a number.")
        upload_id = transfer_id(self, "X-Upload-Id", "upload_id")
        if upload_id is not None:
            total = int(length) if length is not None else None
            self.upload_reporter = self.services.library.reporter(self.user, upload_id, total)
        if length is not None and int(length) > limit:
            self.fail(
                errors.ApiError(
                    errors.PAYLOAD_TOO_LARGE, f"An upload may be at most {limit} bytes."
                )
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
            if self.upload_reporter is not None:
                self.upload_reporter.progress(upload.received)
        except Exception as error:
            self.upload = None
            await upload.abort()
            self.report_failure(error)
            # Answer now and let Tornado close the connection, rather than
            # reading the rest of a body that is already refused.
            self.log_exception(*sys.exc_info())
            self.send_error(500, exc_info=sys.exc_info())

    async def receive(self) -> Result:
        upload = self.upload
        if upload is None:
            raise errors.ApiError(errors.NO_FILES)
        try:
            result = await upload.finish(self.upload_reporter)
        except Exception as error:
            self.report_failure(error)
            raise
        finally:
            self.upload_reporter = None
            self.upload = None
            await upload.abort()
        metrics.count_ingested(self.application, self.transport, result.ingested)
        return result

    def fail(self, error: errors.ApiError) -> None:
        self.report_failure(error)
        raise error

    def report_failure(self, error: BaseException) -> None:
        """`upload.failed`, once, for a transfer that has an id."""
        reporter, self.upload_reporter = self.upload_reporter, None
        if reporter is not None:
            reporter.failed(error)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        upload, self.upload = self.upload, None
        if upload is not None:
            self.report_failure(errors.ApiError(errors.UPLOAD_INTERRUPTED))
            task = asyncio.get_running_loop().create_task(upload.abort())
            _aborting.add(task)
            task.add_done_callback(_aborting.discard)


_aborting: set[asyncio.Task[None]] = set()
