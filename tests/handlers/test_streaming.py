"""streaming: the Range header as StaticFileHandler reads it, for a stored object, and
StoreSender sending a stored body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from server.handlers.streaming import StoreSender, Unsatisfiable, byte_range
from server.storage.home import StorageUnavailable


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (0, 1000, False)),
        ("", (0, 1000, False)),
        ("bytes=0-99", (0, 100, True)),
        ("bytes=100-", (100, 1000, True)),
        ("bytes=-10", (990, 1000, True)),
        ("bytes=-5000", (0, 1000, False)),  # more than there is: the whole object
        ("bytes=0-", (0, 1000, False)),
        ("bytes=990-5000", (990, 1000, True)),
        ("bytes=0-0", (0, 1, True)),
        ("items=0-9", (0, 1000, False)),  # not a byte range: ignored, as Tornado does
        ("bytes=0-1,5-6", (0, 1000, False)),  # several ranges: the whole object
    ],
)
def test_ranges(header: str | None, expected: tuple[int, int, bool]) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=5-4", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)


# StoreSender: a real handler on a real socket, its body from an async generator -------

CHUNK = 256 * 1024


class Source:
    """A store's body: `chunks` chunks, each read only when asked for, and whether it
    was closed (aclose) once the sending ended, however it ended."""

    def __init__(self, chunks: int, fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.read = 0
        self.most_ahead = 0  # chunks read but not yet sent, at most
        self.closed = False
        self.sender: StoreSender | None = None

    async def body(self) -> AsyncIterator[bytes]:
        try:
            for n in range(self.chunks):
                if n == self.fail_at:
                    raise StorageUnavailable("the store went away mid-body")
                await asyncio.sleep(0)
                self.read += 1
                assert self.sender is not None
                sent_chunks = self.sender.sent // CHUNK
                self.most_ahead = max(self.most_ahead, self.read - sent_chunks)
                yield bytes([n % 256]) * CHUNK
        finally:
            self.closed = True


class StoredHandler(tornado.web.RequestHandler):
    def initialize(self, source: Source) -> None:
        self.source = source

    async def get(self) -> None:
        self.set_header("Content-Length", str(self.source.chunks * CHUNK))
        self.source.sender = StoreSender(self)
        await self.source.sender.send(self.source.body(), "test")

    def on_connection_close(self) -> None:
        if self.source.sender is not None:
            self.source.sender.connection_closed()


async def serve(source: Source) -> tuple[tornado.httpserver.HTTPServer, int]:
    app = tornado.web.Application([("/", StoredHandler, {"source": source})])
    server = tornado.httpserver.HTTPServer(app)
    [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    return server, sock.getsockname()[1]


async def read_answer(port: int, limit: int | None = None, pause: float = 0.0) -> bytes:
    """The answer's bytes, until its body is whole, the server closes, or `limit` bytes
    have come (then the client hangs up); `pause` seconds without reading after the
    first bytes (a slow client: the server's writes wait)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    got = b""
    try:
        while limit is None or len(got) < limit:
            piece = await reader.read(65536)
            if not piece:
                break
            if not got:
                await asyncio.sleep(pause)
            got += piece
            head, _, body = got.partition(b"\r\n\r\n")
            length = next(
                (
                    int(v)
                    for k, _, v in (line.partition(b": ") for line in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                ),
                None,
            )
            if length is not None and len(body) >= length:
                break
    finally:
        writer.close()
        await writer.wait_closed()
    return got


@pytest.mark.gen_test(timeout=20)
async def test_the_whole_body_goes_out_with_one_chunk_read_ahead_at_most() -> None:
    source = Source(chunks=40)
    server, port = await serve(source)
    try:
        answer = await read_answer(port, pause=0.3)
        body = answer.split(b"\r\n\r\n", 1)[1]
        assert body == b"".join(bytes([n]) * CHUNK for n in range(40))
        # The next chunk is read while one goes out, and never more than that one.
        assert source.read == 40 and source.most_ahead == 2 and source.closed
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=20)
async def test_a_client_that_hangs_up_stops_the_reading_and_closes_the_body() -> None:
    source = Source(chunks=400)  # 100 MiB: far more than the client takes
    server, port = await serve(source)
    try:
        await read_answer(port, limit=3 * CHUNK)
        for _ in range(200):
            if source.closed:
                break
            await asyncio.sleep(0.01)
        assert source.closed and source.read < 400
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=20)
async def test_a_store_failing_mid_body_cuts_the_body_short_and_closes_it() -> None:
    source = Source(chunks=40, fail_at=10)
    server, port = await serve(source)
    try:
        answer = await read_answer(port)  # the server closes the connection
        assert answer.startswith(b"HTTP/1.1 200")
        assert len(answer.split(b"\r\n\r\n", 1)[1]) == 10 * CHUNK
        assert source.closed
    finally:
        server.stop()
