"""Originals and thumbnails, served by Tornado's StaticFileHandler.

StaticFileHandler already does Range (206/416), conditional GET (304) and HEAD;
these subclasses say which file, its type, its ETag (the sha256, so no file is ever
re-read to make one) and how long it may be cached. The body itself goes out with
`sending.FileSender`: sendfile on a plain connection, reads off the event loop over TLS.

A damaged original (marked by scrub, or found missing or of the wrong size by the
library's glance before the first byte, services/originals.py) is never served: 410
`image_damaged` until the photo is uploaded again.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import tornado.web

from .. import errors
from ..catalog import ImageRecord
from ..services.events import TransferReporter
from ..services.media_urls import Variant
from ..storage import BlobMissing
from .base import ApiHandler, bearer_token
from .sending import FileSender, ShortFile
from .signed import signed_parts, signed_user
from .streaming import StoreSender, Unsatisfiable, byte_range
from .uploading import transfer_id

IMMUTABLE = "private, max-age=31536000, immutable"
REDIRECT_SECONDS = 300  # how long a presigned URL of --s3-redirect serves


def content_disposition(filename: str, kind: str = "inline") -> str:
    """Both forms of RFC 6266: an ASCII fallback and the exact UTF-8 name."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in filename)
    exact = urllib.parse.quote(filename, safe="")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def part_etag(record: ImageRecord, window: tuple[int, int] | None) -> str:
    """The original's ETag is its sha256; a part of it has one of its own."""
    return record.sha256 if window is None else f"{record.sha256}:{window[0]}+{window[1]}"


class FileHandler(ApiHandler, tornado.web.StaticFileHandler):
    etag: str
    sender: FileSender | None = None
    stored_sender: StoreSender | None = None
    body_start: int | None = None
    window: tuple[int, int] | None = None  # (offset, length): a part of the file, served alone

    def initialize(self, services: object, root: Path | None = None) -> None:  # type: ignore[override]
        ApiHandler.initialize(self, services)  # type: ignore[arg-type]
        tornado.web.StaticFileHandler.initialize(self, path=str(root or "/nonexistent"))

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")

    def variant(self) -> Variant | None:
        """Which file of the blob this request asks for (None: none a URL is signed for)."""
        return None

    async def authenticate(self) -> None:
        # A bearer token, when there is one, decides; else a signed URL may stand in.
        parts = None if bearer_token(self.request) else signed_parts(self.request)
        if parts is None:
            await super().authenticate()
            return
        image_id = self.path_args[0] if self.path_args else ""
        self.user = await signed_user(self.services, parts, image_id, self.variant())

    def compute_etag(self) -> str | None:
        return getattr(self, "etag", None)

    def get_content_size(self) -> int:
        return self.window[1] if self.window is not None else super().get_content_size()

    def get_cache_time(self, path: str, modified: object, mime_type: str) -> int:
        return 0

    def get_content(  # type: ignore[override]
        self, abspath: str, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes]:
        # StaticFileHandler has decided the status, the headers and the range; the
        # bytes are sent once it returns, by `send_file` (not read here, on the loop).
        self.body_start = start or 0
        return iter(())

    async def send_file(
        self,
        root: Path,
        path: Path,
        etag: str,
        include_body: bool,
        opened: BinaryIO | None = None,
    ) -> None:
        """The response for `path`; `opened`, the file already open, is sent from (or
        closed when no body is sent)."""
        self.root = str(root)
        self.etag = f'"{etag}"'
        try:
            await tornado.web.StaticFileHandler.get(
                self, path.relative_to(root).as_posix(), include_body
            )
            if self.get_status() == 416:
                # StaticFileHandler leaves a 416 empty, as text/plain and cacheable for a
                # year; it is an error like any other (Content-Range stays).
                self.set_header("Cache-Control", "no-store")
                error = errors.ApiError(errors.RANGE_NOT_SATISFIABLE)
                self.write_error(416, exc_info=(type(error), error, None))
                return
            if self.body_start is not None and self.absolute_path is not None:
                start = self.body_start + (self.window[0] if self.window is not None else 0)
                length = int(self._headers["Content-Length"])
                self.sender = FileSender(self, self.services.run_io, self.progress(length))
                handed, opened = opened, None
                await self.sender.send(self.absolute_path, start, start + length, handed)
        finally:
            if opened is not None:
                opened.close()  # a read-only file: closing it waits for no disk

    def progress(self, length: int) -> Callable[[int], None] | None:
        """What to tell as the body's bytes reach the socket (nothing, but for originals)."""
        return None

    def on_connection_close(self) -> None:
        if self.sender is not None:
            self.sender.connection_closed()
        if self.stored_sender is not None:
            self.stored_sender.connection_closed()
        super().on_connection_close()


class OriginalFileMixin(FileHandler):
    """An original, with `download.progress` events when the client names the download."""

    record: ImageRecord
    reporter: TransferReporter | None = None

    async def send_original(
        self, record: ImageRecord, include_body: bool, window: tuple[int, int] | None = None
    ) -> None:
        """The original, or only `window` (offset, length) of it, as a file of its own
        (Range, ETag and 304 within it): a motion photo's video part."""
        checked = await self.services.library.check_original(record)
        self.record = record
        path, opened = checked.path, checked.file
        if path is None:
            await self.send_stored(record, include_body, window)
            return
        self.window = window
        try:
            self.name_download(record, include_body)
        except BaseException:
            if opened is not None:
                opened.close()
            raise
        try:
            await self.send_file(
                self.services.settings.blobs_dir,
                path,
                part_etag(record, window),
                include_body,
                opened,
            )
        except FileNotFoundError:
            # Gone between opening it above and Tornado's look at it: nothing is sent yet.
            await self.services.library.report_damage(record, "missing")
            raise errors.ApiError(errors.IMAGE_DAMAGED) from None
        except ShortFile:
            # It shrank after the glance above, while its bytes were going out: the
            # client got a cut-off body (the connection is closed), the photo its mark.
            await self.services.library.report_damage(record, "mismatch")

    async def send_stored(
        self, record: ImageRecord, include_body: bool, window: tuple[int, int] | None = None
    ) -> None:
        """The original (or `window` of it) from a store with no local file
        (streaming.py): the same headers, Range, ETag and 304 as a local file gets from
        StaticFileHandler."""
        library = self.services.library
        offset, size = window if window is not None else (0, record.blob.size)
        self.etag = f'"{part_etag(record, window)}"'
        self.set_header("Accept-Ranges", "bytes")
        self.set_etag_header()
        self.set_extra_headers("")
        if self.check_etag_header():
            self.set_status(304)
            return
        if include_body and window is None and self.services.settings.s3_redirect:
            url = await self.services.store.presigned_url(
                record.sha256,
                REDIRECT_SECONDS,
                disposition=content_disposition(record.filename),
                content_type=record.blob.mime,
            )
            if url is not None:
                # The store serves it (Range, and these headers too); the URL expires.
                for name in ("Etag", "Accept-Ranges", "Content-Disposition"):
                    self.clear_header(name)
                self.set_header("Cache-Control", "private, no-store")
                self.redirect(url)
                return
        try:
            start, end, partial = byte_range(self.request.headers.get("Range"), size)
        except Unsatisfiable:
            # As a local file's 416: an error like any other, Content-Range kept.
            self.set_status(416)
            self.set_header("Cache-Control", "no-store")
            self.set_header("Content-Range", f"bytes */{size}")
            error = errors.ApiError(errors.RANGE_NOT_SATISFIABLE)
            self.write_error(416, exc_info=(type(error), error, None))
            return
        if partial:
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.set_header("Content-Type", self.get_content_type())
        self.set_header("Content-Length", end - start)
        self.name_download(record, include_body)
        if not include_body or start == end:
            return
        self.stored_sender = StoreSender(self, self.progress(end - start))
        try:
            await self.stored_sender.send(
                self.services.store.read(record.sha256, offset + start, offset + end),
                record.sha256,
            )
        except BlobMissing:
            # Gone since its size was looked at: nothing is sent yet.
            await library.report_damage(record, "missing")
            raise errors.ApiError(errors.IMAGE_DAMAGED) from None

    def name_download(self, record: ImageRecord, include_body: bool) -> None:
        """`download.progress` events, when the client names its download."""
        download_id = transfer_id(self, "X-Download-Id", "download_id")
        if download_id is not None and include_body:
            self.reporter = TransferReporter(
                self.services.events,
                self.user.id,
                "download",
                download_id,
                None,
                image_id=record.sha256,
            )

    def progress(self, length: int) -> Callable[[int], None] | None:
        reporter = self.reporter
        if reporter is None or self.get_status() not in (200, 206):
            return None
        reporter.total = length
        return reporter.progress

    def get_content_type(self) -> str:
        return self.record.blob.mime

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", IMMUTABLE)
        self.set_header("Content-Disposition", content_disposition(self.record.filename))


class OriginalHandler(OriginalFileMixin):
    def variant(self) -> Variant | None:
        return "original"

    async def get(self, image_id: str, include_body: bool = True) -> None:
        record = await self.services.library.get_kept(self.user, image_id)
        await self.send_original(record, include_body)

    async def head(self, image_id: str) -> None:
        await self.get(image_id, include_body=False)


THUMBNAIL_ALIASES = {"grid": 360, "360": 360, "preview": 1440, "1440": 1440}
THUMBNAIL_VARIANTS: dict[int, Variant] = {360: "grid", 1440: "preview"}


class ThumbnailHandler(FileHandler):
    def variant(self) -> Variant | None:
        size = THUMBNAIL_ALIASES.get(self.get_query_argument("size", "grid"))
        return None if size is None else THUMBNAIL_VARIANTS[size]

    async def get(self, image_id: str, include_body: bool = True) -> None:
        record = await self.services.library.get_kept(self.user, image_id)
        size_name = self.get_query_argument("size", "grid")
        size = THUMBNAIL_ALIASES.get(size_name)
        if size is None:
            raise errors.ApiError(
                errors.INVALID_ARGUMENT, "size must be grid (360) or preview (1440)."
            )
        library = self.services.library
        try:
            path = await library.thumbnails.ensure(record.blob, size)
        except FileNotFoundError:
            # The original it would be made from is gone.
            await library.report_damage(record, "missing")
            raise errors.ApiError(errors.IMAGE_DAMAGED) from None
        if path is None:
            raise errors.ApiError(
                errors.IMAGE_DAMAGED if record.blob.damaged else errors.NO_THUMBNAIL
            )
        thumbnails = library.thumbnails
        await self.send_file(thumbnails.root, path, path.stem, include_body)

    async def head(self, image_id: str) -> None:
        await self.get(image_id, include_body=False)

    def get_content_type(self) -> str:
        return "image/jpeg"

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", IMMUTABLE)
