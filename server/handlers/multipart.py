"""A multipart/form-data body, parsed as it streams in, each file staged to disk.

`python-multipart` parses; its callbacks only collect what they saw, and the
collected events are then applied asynchronously, in order, so that writing to
disk never blocks the parser's caller and memory holds one chunk at a time.

Each file goes into the request's one `Ingest` as soon as it has all arrived; the
writers are this request's, dropped by `abort` however the request ends.
"""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header

from .. import errors
from ..catalog import User
from ..services.ingest import Result, UploadReporter
from ..services.library import LibraryService
from ..storage import BlobWriter, StorageFull

MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 1000


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise errors.ApiError(
            errors.BAD_MULTIPART, "The body must be multipart/form-data with a boundary."
        )
    return boundary


class MultipartUpload:
    def __init__(self, library: LibraryService, user: User, content_type: str) -> None:
        self._library = library
        self._events: list[tuple[str, list[bytes]]] = []
        self._parser = MultipartParser(
            boundary_of(content_type),
            callbacks={
                "on_part_begin": lambda: self._mark("begin"),
                "on_header_field": lambda d, s, e: self._collect("hname", d[s:e]),
                "on_header_value": lambda d, s, e: self._collect("hvalue", d[s:e]),
                "on_header_end": lambda: self._mark("header_end"),
                "on_headers_finished": lambda: self._mark("headers"),
                "on_part_data": lambda d, s, e: self._collect("data", d[s:e]),
                "on_part_end": lambda: self._mark("end"),
                "on_end": lambda: self._mark("done"),
            },
        )
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._header_bytes = 0
        self._field = ""
        self._filename: str | None = None
        self._writer: BlobWriter | None = None
        self._field_bytes = 0
        self._parts = 0
        self._done = False
        self._ingest = library.ingest(user, batch=True)
        self._writers: list[BlobWriter] = []  # every writer opened: dropped by `abort`
        self.received = 0

    def _mark(self, kind: str) -> None:
        self._events.append((kind, []))

    def _collect(self, kind: str, data: bytes) -> None:
        if self._events and self._events[-1][0] == kind:
            self._events[-1][1].append(data)
        else:
            self._events.append((kind, [data]))

    async def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self._done:
            return
        try:
            self._parser.write(chunk)
        except Exception as error:  # python-multipart raises several kinds
            raise errors.ApiError(
                errors.BAD_MULTIPART, f"The multipart body is malformed: {error}."
            ) from None
        events, self._events = self._events, []
        for kind, pieces in events:
            await self._apply(kind, b"".join(pieces))

    async def _apply(self, kind: str, data: bytes) -> None:
        if kind == "begin":
            self._parts += 1
            if self._parts > MAX_PARTS:
                raise errors.ApiError(errors.BAD_MULTIPART, f"At most {MAX_PARTS} parts a request.")
            self._headers, self._header_bytes = {}, 0
            self._header_name.clear()
            self._header_value.clear()
        elif kind in ("hname", "hvalue"):
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                raise errors.ApiError(errors.BAD_MULTIPART, "A part's headers are too large.")
            (self._header_name if kind == "hname" else self._header_value).extend(data)
        elif kind == "header_end":
            self._headers[self._header_name.decode("latin-1").lower()] = bytes(self._header_value)
            self._header_name.clear()
            self._header_value.clear()
        elif kind == "headers":
            self._start_part()
        elif kind == "data":
            await self._write(data)
        elif kind == "end":
            await self._end_part()
        elif kind == "done":
            self._done = True

    def _start_part(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition", b""))
        if disposition != b"form-data":
            raise errors.ApiError(errors.BAD_MULTIPART, "A part has no form-data disposition.")
        self._field = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self._field_bytes = 0
        if raw_filename is None:
            self._filename, self._writer = None, None
            return
        self._filename = raw_filename.decode("utf-8", "replace")
        self._writer = self._library.open_writer()
        self._writers.append(self._writer)

    async def _write(self, data: bytes) -> None:
        if self._writer is not None:
            try:
                await self._writer.write(data)
            except StorageFull:
                raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
            return
        self._field_bytes += len(data)
        if self._field_bytes > MAX_FIELD_BYTES:
            raise errors.ApiError(errors.BAD_MULTIPART, "A form field is too large.")

    async def _end_part(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await self._ingest.add(writer, self._filename or "", self._field)

    async def finish(self, reporter: UploadReporter | None = None) -> Result:
        """Commit every well-formed file, all together, once the whole body has arrived."""
        if not self._done:
            raise errors.ApiError(
                errors.BAD_MULTIPART, "The body ended before its closing boundary."
            )
        return await self._ingest.commit(reporter)

    async def abort(self) -> None:
        """Drop every staged file (after a commit, only what did not go into the store)."""
        writers, self._writers, self._writer = self._writers, [], None
        for writer in writers:
            await writer.abort()
