"""How an original's bytes leave: sendfile on plain connections, reads over TLS, and
clients that stall, vanish, or find the file shrinking under them."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.iostream
import tornado.web

from server.config import Settings
from server.handlers import sending
from tests.conftest import Api, unique_jpeg
from tests.handlers.helpers import API, assert_json_error, blob_path, port_of, upload_one
from tests.handlers.test_events import events_until, listen, progress_of
from tests.test_serving import needs_openssl, self_signed


def big_jpeg(mib: int) -> bytes:
    """A real JPEG padded past `mib` MiB with APP15 segments of varied bytes."""
    head = unique_jpeg((320, 240))
    segments = bytearray()
    for n in range(mib * 16 + 1):
        payload = (n.to_bytes(4, "big") * (65532 // 4)) + b"\x00"
        segments += b"\xff\xef" + (65535).to_bytes(2, "big") + payload
    return head[:2] + bytes(segments) + head[2:]


def original_url(image_id: str) -> str:
    return f"{API}/images/{image_id}/original"


@pytest.fixture
def sendfile_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes each real os.sendfile call sent (a spy: every call still goes to the kernel)."""
    calls: list[int] = []
    real = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent = real(out_fd, in_fd, offset, count)
        calls.append(sent)
        return sent

    monkeypatch.setattr(sending.os, "sendfile", spy)
    return calls


def open_copies(path: Path) -> int:
    """How many descriptors of this process have `path` open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass
    return count


async def settle(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


class RawClient:
    """One HTTP/1.1 connection with a small receive buffer, read only when asked."""

    def __init__(self, stream: tornado.iostream.IOStream) -> None:
        self.stream = stream

    @classmethod
    async def connect(cls, base_url: str, receive_buffer: int = 64 * 1024) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        stream = tornado.iostream.IOStream(sock)
        await stream.connect(("127.0.0.1", port_of(base_url)))
        return cls(stream)

    async def ask(self, path: str, token: str, *extra: str) -> dict[str, str]:
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
        await self.stream.write(("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(self.stream.read_until(b"\r\n\r\n"), 10)
        status, *fields = head.decode("latin-1").rstrip().split("\r\n")
        headers = {"status": status.split()[1]}
        for field in fields:
            name, _, value = field.partition(":")
            headers[name.strip().lower()] = value.strip()
        return headers

    async def read(self, count: int) -> bytes:
        return await asyncio.wait_for(self.stream.read_bytes(count), 30)

    async def read_to_close(self) -> bytes:
        return await asyncio.wait_for(self.stream.read_until_close(), 30)

    def close(self) -> None:
        self.stream.close()


# sendfile on a plain connection ------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_an_original_and_its_ranges_go_out_by_sendfile_byte_exact(
    api: Api, sendfile_calls: list[int]
) -> None:
    data = big_jpeg(6)
    image = await upload_one(api, data)
    response = await api.fetch(original_url(image["id"]))
    assert response.code == 200 and response.body == data
    assert sum(sendfile_calls) == len(data)
    size = len(data)
    for spec, start, end in [
        ("bytes=0-0", 0, 1),
        ("bytes=1000-2000999", 1000, 2001000),
        (f"bytes={size - 70000}-", size - 70000, size),
        ("bytes=-12345", size - 12345, size),
        (f"bytes=5-{size * 2}", 5, size),
    ]:
        sendfile_calls.clear()
        response = await api.fetch(original_url(image["id"]), headers={"Range": spec})
        assert response.code == 206, spec
        assert response.body == data[start:end], spec
        assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{size}"
        assert sum(sendfile_calls) == end - start, spec


@pytest.mark.gen_test(timeout=60)
async def test_the_connection_stays_usable_after_a_sendfile_body(
    api: Api, base_url: str, token: str, sendfile_calls: list[int]
) -> None:
    data = big_jpeg(2)
    image = await upload_one(api, data)
    client = await RawClient.connect(base_url, receive_buffer=1 << 20)
    try:
        for extra, expected in [((), data), (("Range: bytes=100-199",), data[100:200])]:
            headers = await client.ask(original_url(image["id"]), token, *extra)
            assert int(headers["content-length"]) == len(expected)
            assert await client.read(len(expected)) == expected
        headers = await client.ask(f"{API}/images/{image['id']}", token)
        assert headers["status"] == "200"
    finally:
        client.close()
    assert sendfile_calls


# without sendfile ----------------------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_where_the_kernel_refuses_sendfile_the_bytes_are_read_instead(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        raise OSError(errno.EINVAL, "sendfile is not supported here")

    monkeypatch.setattr(sending.os, "sendfile", refuse)
    data = big_jpeg(3)
    image = await upload_one(api, data)
    response = await api.fetch(original_url(image["id"]))
    assert response.code == 200 and response.body == data
    response = await api.fetch(original_url(image["id"]), headers={"Range": "bytes=1048000-"})
    assert response.code == 206 and response.body == data[1048000:]


@pytest.fixture
def tls_base_url(
    tmp_path: Path, app: tornado.web.Application, io_loop: Any
) -> Iterator[tuple[str, str]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = tornado.httpserver.HTTPServer(app, ssl_options=context)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server.add_socket(sock)
    yield f"https://127.0.0.1:{sock.getsockname()[1]}", str(cert)
    server.stop()


@needs_openssl
@pytest.mark.gen_test(timeout=60)
async def test_over_tls_the_bytes_are_read_and_written_through_tornado(
    api: Api,
    base_url: str,
    token: str,
    tls_base_url: tuple[str, str],
    sendfile_calls: list[int],
) -> None:
    data = big_jpeg(3)
    image = await upload_one(api, data)
    base, cert = tls_base_url
    ws = await listen(base_url, token)
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        for extra, expected, status in [
            ({"X-Download-Id": "tls-1"}, data, 200),
            ({"Range": "bytes=2000000-"}, data[2000000:], 206),
        ]:
            response = await client.fetch(
                base + original_url(image["id"]),
                headers={"Authorization": f"Bearer {token}", **extra},
                ca_certs=cert,
                request_timeout=30,
            )
            assert response.code == status and response.body == expected
    finally:
        client.close()
    assert sendfile_calls == []
    # Progress counts the bytes as they go, on this path too.
    seen = await events_until(ws, "download.progress", "tls-1")
    while seen[-1]["sent"] != len(data):
        seen += await events_until(ws, "download.progress", "tls-1")
    sent = progress_of(seen, "download")
    assert sent == sorted(sent) and len(sent) >= 2 and seen[-1]["total"] == len(data)
    ws.close()


# clients that stall or go away ---------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_stops_reading_holds_up_nobody_and_leaks_nothing(
    api: Api, base_url: str, token: str, settings: Settings
) -> None:
    data = big_jpeg(32)
    image = await upload_one(api, data)
    path = blob_path(settings, image["id"])
    stalled = await RawClient.connect(base_url)
    headers = await stalled.ask(original_url(image["id"]), token)
    assert headers["status"] == "200"
    assert await stalled.read(100_000) == data[:100_000]
    # It reads no more. Everyone else is served meanwhile, in full.
    for _ in range(3):
        response = await api.fetch(original_url(image["id"]))
        assert response.code == 200 and response.body == data
        code, page = await api.json(f"{API}/images")
        assert code == 200 and page["items"][0]["id"] == image["id"]
    # The stalled download's file (the thumbnails' work on it may still be finishing).
    assert await settle(lambda: open_copies(path) == 1), open_copies(path)
    stalled.close()
    assert await settle(lambda: open_copies(path) == 0), "the stalled download's file stays open"


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_takes_nothing_for_too_long_is_let_go(
    api: Api, base_url: str, token: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sending, "STALL_TIMEOUT", 0.5)
    data = big_jpeg(32)
    image = await upload_one(api, data)
    path = blob_path(settings, image["id"])
    stalled = await RawClient.connect(base_url)
    try:
        headers = await stalled.ask(original_url(image["id"]), token)
        assert headers["status"] == "200"
        assert await settle(lambda: open_copies(path) == 0), "the file is still open"
        received = await stalled.read_to_close()  # what was in flight, then the close
        assert 0 < len(received) < len(data) and data.startswith(received)
    finally:
        stalled.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_file_that_shrinks_mid_download_is_cut_off_and_then_410(
    api: Api, base_url: str, token: str, settings: Settings
) -> None:
    data = big_jpeg(48)
    image = await upload_one(api, data)
    path = blob_path(settings, image["id"])
    client = await RawClient.connect(base_url)
    try:
        headers = await client.ask(original_url(image["id"]), token)
        assert headers["status"] == "200"
        assert await client.read(100_000) == data[:100_000]
        await asyncio.sleep(0.2)  # the server fills what the socket holds, and waits
        os.truncate(path, 24 * 1024 * 1024)
        received = await client.read_to_close()
    finally:
        client.close()
    assert 100_000 + len(received) == 24 * 1024 * 1024
    response = await api.fetch(original_url(image["id"]))
    assert_json_error(response, 410, "image_damaged")
