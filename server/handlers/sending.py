"""A file's bytes onto a response whose headers Tornado has written.

On a plain TCP connection the kernel copies them (`os.sendfile`): from the page cache
to the socket, no byte passing through Python. Over TLS, or where the kernel refuses
sendfile for this file or socket, they are read off the event loop a chunk at a time
and written through Tornado, at most two chunks in memory whatever the file's size.

Either way the event loop only ever waits for the socket to take more, so a client
that stops reading costs one registered file descriptor and no thread, and after
`STALL_TIMEOUT` seconds without taking a byte it loses its connection.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

import tornado.http1connection
import tornado.iostream
import tornado.web

log = logging.getLogger(__name__)

Runner = Callable[..., Awaitable[Any]]
"""Runs a blocking call off the event loop: `await run(fn, *args)`."""

READ_CHUNK = 1024 * 1024
# One call's most (nginx's sendfile_max_chunk): to a fast reader the kernel would go on
# copying, and the loop waits for it.
SENDFILE_CHUNK = 2 * 1024 * 1024
STALL_TIMEOUT = 120.0
# What sendfile says when it cannot work on this pair of descriptors (before any byte).
_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTSOCK}
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class ShortFile(Exception):
    """The file ended before the bytes the response promised: it shrank while being sent."""


class FileSender:
    """Sends bytes `[start, end)` of a file as the body of `handler`'s response.

    `progress(n)` is called as bytes reach the socket, with the count so far. A client
    that goes away (or stalls) ends the send quietly with the connection closed;
    `ShortFile` is raised (after closing the connection) for a file that shrank.
    """

    def __init__(
        self,
        handler: tornado.web.RequestHandler,
        run: Runner,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._handler = handler
        self._run = run
        self._progress = progress
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.sent = 0

    def connection_closed(self) -> None:
        """Tornado saw the connection close: stop waiting for it."""
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def send(self, path: str, start: int, end: int, opened: BinaryIO | None = None) -> None:
        """Sends from `opened` (which it closes) or opens `path`: raises OSError
        (FileNotFoundError...) before anything is written, if the file cannot be
        opened, so that the response can still be an error."""
        handler = self._handler
        file = opened if opened is not None else await self._run(open, path, "rb", 0)
        try:
            # The headers first, through Tornado, as for any response.
            try:
                await handler.flush()
            except tornado.iostream.StreamClosedError:
                self.closed = True
            connection = handler.request.connection
            stream = getattr(connection, "stream", None)
            plain = (
                isinstance(connection, tornado.http1connection.HTTP1Connection)
                and type(stream) is tornado.iostream.IOStream
                and not stream.closed()
            )
            offset = start
            if plain and not self.closed:
                assert isinstance(stream, tornado.iostream.IOStream)
                assert isinstance(connection, tornado.http1connection.HTTP1Connection)
                offset = await self._sendfile(connection, stream, file.fileno(), start, end)
            if offset < end and not self.closed:
                await self._copy(file.fileno(), offset, end)
        except _GONE:
            self._close()
        except (TimeoutError, ShortFile) as error:
            self._close()
            if isinstance(error, ShortFile):
                raise
            log.info("closed a download whose client took nothing for %.0f s", STALL_TIMEOUT)
        finally:
            file.close()  # a read-only file: closing it waits for no disk

    # the kernel's copy

    async def _sendfile(
        self,
        connection: tornado.http1connection.HTTP1Connection,
        stream: tornado.iostream.IOStream,
        source: int,
        start: int,
        end: int,
    ) -> int:
        """Bytes from `start` with sendfile; the offset it got to (`start` if refused).

        As nginx does it: each time the socket can take more, one sendfile call, made
        from the event loop's own callback (no coroutine step per call), and nothing
        in between but a timer that notices when the client has taken nothing for
        `STALL_TIMEOUT`.
        """
        loop = asyncio.get_running_loop()
        # A descriptor of our own for the same socket: waiting on it cannot disturb
        # Tornado's registration, and it stays valid (not reused) if Tornado closes its own.
        target = os.dup(stream.socket.fileno())
        done: asyncio.Future[None] = loop.create_future()
        self._waiter = done
        offset = start
        moved = loop.time()

        def push() -> None:
            nonlocal offset, moved
            if done.done():
                return
            try:
                n = os.sendfile(target, source, offset, min(end - offset, SENDFILE_CHUNK))
            except BlockingIOError:
                return
            except OSError as error:
                done.set_exception(error)
                return
            if n == 0:
                done.set_exception(ShortFile(f"the file ended at byte {offset}, before {end}"))
                return
            offset += n
            moved = loop.time()
            self._count(connection, n)
            if offset >= end:
                done.set_result(None)

        def watch() -> None:
            if done.done():
                return
            idle = loop.time() - moved
            if idle >= STALL_TIMEOUT:
                done.set_exception(TimeoutError())
            else:
                timers.append(loop.call_later(STALL_TIMEOUT - idle, watch))

        timers = [loop.call_later(STALL_TIMEOUT, watch)]
        try:
            push()  # a small file (a thumbnail) often goes whole, with no wait
            if not done.done():
                loop.add_writer(target, push)
            await done
        except OSError as error:
            if offset == start and error.errno in _NO_SENDFILE:
                return start
            raise
        finally:
            timers[-1].cancel()
            loop.remove_writer(target)
            os.close(target)
            self._waiter = None
        return offset

    def _count(self, connection: tornado.http1connection.HTTP1Connection, n: int) -> None:
        # Bytes written past Tornado still count against the Content-Length it holds
        # the response to (and checks when the response finishes).
        remaining = connection._expected_content_remaining
        if remaining is not None:
            connection._expected_content_remaining = remaining - n
        self.sent += n
        if self._progress is not None:
            self._progress(self.sent)

    # reading in Python, writing through Tornado

    async def _copy(self, source: int, start: int, end: int) -> None:
        """Bytes from `start` read off the loop, the next chunk read while this one drains."""
        handler = self._handler
        offset = start
        pending = self._read(source, offset, end)
        try:
            while offset < end and not self.closed:
                chunk: bytes = await pending
                if not chunk:
                    raise ShortFile(f"the file ended at byte {offset}, before {end}")
                offset += len(chunk)
                if offset < end:
                    pending = self._read(source, offset, end)
                handler.write(chunk)
                del chunk
                try:
                    async with asyncio.timeout(STALL_TIMEOUT):
                        await handler.flush()
                except tornado.iostream.StreamClosedError:
                    self.closed = True
                else:
                    self.sent = offset - start
                    if self._progress is not None:
                        self._progress(self.sent)
        finally:
            # Whatever ended it, the read under way finishes before the file is closed.
            await asyncio.gather(pending, return_exceptions=True)

    def _read(self, source: int, offset: int, end: int) -> asyncio.Future[bytes]:
        return asyncio.ensure_future(
            self._run(os.pread, source, min(READ_CHUNK, end - offset), offset)
        )

    def _close(self) -> None:
        self.closed = True
        stream = getattr(self._handler.request.connection, "stream", None)
        if isinstance(stream, tornado.iostream.IOStream):
            stream.close()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
