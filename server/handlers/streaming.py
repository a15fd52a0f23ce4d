"""An original's bytes from a store that has no local file (object storage), as the body
of a response whose status and headers are decided: Range (206/416), ETag and 304 as
StaticFileHandler does them for a local file, then the bytes a chunk at a time.

Memory stays bounded: one chunk (at most 256 KiB, the store's) is written and flushed
before the next is asked for, and the store's socket is not read meanwhile. A client
that takes nothing for `STALL_TIMEOUT` seconds loses its connection; a store that
fails once the first byte is out can only cut the body short (the connection closes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import tornado.httputil
import tornado.iostream
import tornado.web

from ..storage.home import StorageUnavailable
from .sending import STALL_TIMEOUT

log = logging.getLogger(__name__)


class Unsatisfiable(Exception):
    """The Range asked for is outside the object: 416, `Content-Range: bytes */size`."""


def byte_range(header: str | None, size: int) -> tuple[int, int, bool]:
    """[start, end) to send for a Range header (None: all), and whether it is partial."""
    if not header:
        return 0, size, False
    parsed = tornado.httputil._parse_request_range(header)
    if parsed is None:
        return 0, size, False  # not a byte range Tornado knows: the whole object
    start, end = parsed
    if start is not None and start < 0:
        start = max(0, start + size)
    if (start is not None and (start >= size or (end is not None and start >= end))) or end == 0:
        raise Unsatisfiable
    first = start or 0
    stop = size if end is None else min(end, size)
    return first, stop, (first, stop) != (0, size)


class StoreSender:
    """Sends the chunks of `body` through `handler`, counting them for `progress`."""

    def __init__(
        self,
        handler: tornado.web.RequestHandler,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._handler = handler
        self._progress = progress
        self.closed = False
        self.sent = 0

    def connection_closed(self) -> None:
        self.closed = True

    async def send(self, body: AsyncIterator[bytes], name: str) -> None:
        """The headers (already set) and the bytes. The first chunk is fetched before
        anything is written, so a store that cannot be read still makes an error answer."""
        handler = self._handler
        first = await anext(body, b"")
        try:
            chunk = first
            while not self.closed:
                if chunk:
                    handler.write(chunk)
                try:
                    async with asyncio.timeout(STALL_TIMEOUT):
                        await handler.flush()
                except tornado.iostream.StreamClosedError:
                    self.closed = True
                    break
                self.sent += len(chunk)
                if self._progress is not None and chunk:
                    self._progress(self.sent)
                chunk = await anext(body, b"")
                if not chunk:
                    break
        except TimeoutError:
            log.info("closed a download whose client took nothing for %.0f s", STALL_TIMEOUT)
            self._close()
        except StorageUnavailable as error:
            # Headers and some bytes are out: the body can only be cut short.
            log.warning("%s: the store failed mid-body after %d bytes: %s", name, self.sent, error)
            self._close()
        finally:
            await _close(body)

    def _close(self) -> None:
        self.closed = True
        stream = getattr(self._handler.request.connection, "stream", None)
        if isinstance(stream, tornado.iostream.IOStream):
            stream.close()


async def _close(body: AsyncIterator[bytes]) -> None:
    closing = getattr(body, "aclose", None)
    if closing is not None:
        await closing()
