"""S3BlobHome when the store fails: SlowDown, 5xx, stalls, cut bodies, the gateway gone.

Answers a real gateway never gives on demand (SlowDown, 500, a stall, a body cut
short) come from a small HTTP proxy on loopback in front of it; everything else is
the real gateway, stopped and started again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.testing
import tornado.web

from scripts.s3_gateway import Gateway
from server.storage import BlobMissing
from server.storage.home import StorageUnavailable
from server.storage.s3 import S3BlobHome
from server.storage.s3_config import S3Location

TIMEOUT = 120
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
INTERNAL = b"<Error><Code>InternalError</Code><Message>We encountered an error.</Message></Error>"
HOP_HEADERS = {"connection", "transfer-encoding", "content-length", "keep-alive", "expect"}


@dataclasses.dataclass
class Faults:
    slow_down: int = 0  # answer SlowDown to the next N requests
    internal: int = 0  # answer 500 to the next N requests
    stall: float = 0.0  # wait this long before forwarding
    cut: int = 0  # send half the body of the next N GETs, then hang up
    seen: list[str] = dataclasses.field(default_factory=list)
    session: aiohttp.ClientSession | None = None
    location: S3Location | None = None  # the store, through the proxy


def forwarded(headers: tornado.httputil.HTTPHeaders) -> tornado.httputil.HTTPHeaders:
    kept = tornado.httputil.HTTPHeaders()
    for name, value in headers.get_all():
        if name.lower() not in HOP_HEADERS or name.lower() == "content-length":
            kept.add(name, value)
    return kept


class Proxy(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")

    def initialize(self, upstream: str, faults: Faults) -> None:
        self.upstream = upstream
        self.faults = faults

    async def forward(self) -> None:
        faults, method = self.faults, self.request.method or "GET"
        faults.seen.append(f"{method} {self.request.headers.get('Range', '')}".strip())
        if faults.slow_down or faults.internal:
            slow = faults.slow_down > 0
            faults.slow_down, faults.internal = (
                (faults.slow_down - 1, faults.internal) if slow else (0, faults.internal - 1)
            )
            self.set_status(503 if slow else 500)
            self.set_header("Content-Type", "application/xml")
            self.finish(SLOW_DOWN if slow else INTERNAL)
            return
        if faults.stall:
            await asyncio.sleep(faults.stall)
        if faults.session is None:
            faults.session = aiohttp.ClientSession(auto_decompress=False)
        async with faults.session.request(
            method,
            self.upstream + self.request.uri,
            headers=forwarded(self.request.headers),
            data=io.BytesIO(self.request.body) if method in ("PUT", "POST") else None,
            allow_redirects=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        ) as answer:
            body = await answer.read()
            status, reason, headers = answer.status, answer.reason, list(answer.headers.items())
        self.set_status(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_HEADERS:
                self.add_header(name, value)
        if method == "HEAD":
            self.set_header("Content-Length", dict(headers).get("Content-Length", "0"))
            self.finish()
            return
        if method == "GET" and faults.cut and len(body) > 1:
            faults.cut -= 1
            self.set_header("Content-Length", str(len(body)))
            self.write(body[: len(body) // 2])
            await self.flush()
            assert self.request.connection is not None
            self.request.connection.close()  # type: ignore[attr-defined]
            return
        self.finish(body)

    get = head = put = post = delete = forward  # type: ignore[assignment]


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def proxied(
    s3_location: S3Location, faults: Faults, io_loop: tornado.ioloop.IOLoop
) -> Iterator[S3BlobHome]:
    assert s3_location.endpoint
    app = tornado.web.Application(
        [(r".*", Proxy, {"upstream": s3_location.endpoint, "faults": faults})]
    )
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app, max_body_size=64 * 1024 * 1024)
    server.add_sockets([sock])
    location = dataclasses.replace(s3_location, endpoint=f"http://127.0.0.1:{port}")
    faults.location = location

    async def open_home() -> S3BlobHome:
        return await S3BlobHome.open(location, attempts=3, read_timeout=20, retry_after=7)

    home = io_loop.run_sync(open_home)
    yield home
    io_loop.run_sync(home.close)
    server.stop()
    if faults.session is not None:
        io_loop.run_sync(faults.session.close)


def stage(folder: Path, data: bytes) -> tuple[Path, str]:
    sha256 = hashlib.sha256(data).hexdigest()
    path = folder / f"{sha256[:12]}.part"
    path.write_bytes(data)
    return path, sha256


async def read_all(home: S3BlobHome, sha256: str) -> bytes:
    return b"".join([chunk async for chunk in home.read(sha256)])


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_slow_down_is_retried(proxied: S3BlobHome, faults: Faults, tmp_path: Path) -> None:
    staged, sha256 = stage(tmp_path, os.urandom(10_000))
    faults.slow_down = 2
    assert await proxied.put(staged, sha256) is True
    assert faults.seen[:3] == ["HEAD", "HEAD", "HEAD"]  # two SlowDowns, then the real one
    assert await proxied.rehash(sha256) == sha256


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("fault", ["slow_down", "internal"])
async def test_a_store_that_keeps_failing_is_unavailable(
    proxied: S3BlobHome, faults: Faults, tmp_path: Path, fault: str
) -> None:
    staged, sha256 = stage(tmp_path, os.urandom(10_000))
    setattr(faults, fault, 1000)
    with pytest.raises(StorageUnavailable) as caught:
        await proxied.put(staged, sha256)
    assert caught.value.retry_after == 7
    assert len(faults.seen) == 3  # bounded: the attempts allowed, no more
    setattr(faults, fault, 0)
    assert not await proxied.exists(sha256)  # nothing was acknowledged, nothing is there


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_stalled_store_times_out(proxied: S3BlobHome, faults: Faults) -> None:
    assert faults.location is not None
    impatient = await S3BlobHome.open(faults.location, attempts=3, read_timeout=0.5)
    faults.stall = 2  # past the read timeout
    try:
        with pytest.raises(StorageUnavailable, match="Timeout"):
            await impatient.exists("a" * 64)
    finally:
        await impatient.close()
    assert len(faults.seen) == 3


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_read_cut_short_goes_on_from_the_byte_reached(
    proxied: S3BlobHome, faults: Faults, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    staged, sha256 = stage(tmp_path, data)
    await proxied.put(staged, sha256)
    faults.seen.clear()
    faults.cut = 1
    assert await read_all(proxied, sha256) == data
    gets = [line for line in faults.seen if line.startswith("GET")]
    assert len(gets) == 2
    first, second = (int(line.split("=")[1].split("-")[0]) for line in gets)
    assert first == 0 and 0 < second <= len(data) // 2


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_read_that_keeps_breaking_is_unavailable(
    proxied: S3BlobHome, faults: Faults, tmp_path: Path
) -> None:
    staged, sha256 = stage(tmp_path, os.urandom(1024 * 1024))
    await proxied.put(staged, sha256)
    faults.cut = 1000
    with pytest.raises(StorageUnavailable):
        await read_all(proxied, sha256)


def rgw_serving(gateway: Gateway) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", gateway.rgw_port)) == 0


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_the_gateway_stopped_and_started_again(
    s3_running: Gateway, s3_location: S3Location, tmp_path: Path
) -> None:
    home = await S3BlobHome.open(s3_location, attempts=2)
    try:
        kept, kept_sha = stage(tmp_path, os.urandom(200_000))
        await home.put(kept, kept_sha)
        s3_running.stop_rgw()
        assert not rgw_serving(s3_running)
        staged, sha256 = stage(tmp_path, os.urandom(300_000))
        with pytest.raises(StorageUnavailable):
            await home.put(staged, sha256)
        with pytest.raises(StorageUnavailable):
            await home.exists(kept_sha)
        with pytest.raises(StorageUnavailable):
            await read_all(home, kept_sha)
        with pytest.raises(StorageUnavailable):
            await anext(home.pages())
        # On this thread, not an executor's: the daemons die with the thread that made them.
        s3_running.start_rgw(wait=90)
        # radosgw alone was restarted: what the store held is still there.
        assert await read_all(home, kept_sha) == kept.read_bytes()
        assert await home.put(staged, sha256) is True
        assert await home.rehash(sha256) == sha256
        with pytest.raises(BlobMissing):
            await home.size("b" * 64)
    finally:
        await home.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_the_gateway_stopped_in_the_middle_of_a_read(
    s3_running: Gateway, s3_location: S3Location, tmp_path: Path
) -> None:
    home = await S3BlobHome.open(s3_location, attempts=2)
    try:
        data = os.urandom(40 * 1024 * 1024)  # more than the sockets between us can hold
        staged, sha256 = stage(tmp_path, data)
        await home.put(staged, sha256)
        received = 0
        with pytest.raises(StorageUnavailable):
            async for chunk in home.read(sha256):
                received += len(chunk)
                if "rgw" in s3_running.pids:
                    s3_running.stop_rgw()
        assert 0 < received < len(data)
        s3_running.start_rgw(wait=90)
        assert await home.rehash(sha256) == sha256  # all there once it is back
    finally:
        await home.close()
