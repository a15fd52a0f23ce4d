"""tus across the cluster: an upload's PATCHes may reach any process.

Begun on A, A killed with SIGKILL in the middle of a PATCH, finished through B: the
photo is byte-exact. While one process is receiving a PATCH, a PATCH of the same
upload on another process is refused with 423 and changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

from tests.cluster.client import auth, events_until, hang_up, listen
from tests.cluster.harness import Cluster
from tests.conftest import unique_jpeg
from tests.server_cli import request

TUS = {"Tus-Resumable": "1.0.0"}


def create(base: str, token: str, size: int) -> str:
    name = base64.b64encode(b"tus.jpg").decode()
    status, headers, body = request(
        base + "/uploads/",
        "POST",
        b"",
        auth(token, **TUS, **{"Upload-Length": str(size), "Upload-Metadata": f"filename {name}"}),
    )
    assert status == 201, body
    return headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def offset(base: str, token: str, upload: str) -> int:
    status, headers, body = request(f"{base}/uploads/{upload}", "HEAD", None, auth(token, **TUS))
    assert status == 200, body
    return int(headers["Upload-Offset"])


def patch(
    base: str, token: str, upload: str, at: int, piece: bytes
) -> tuple[int, dict[str, str], bytes]:
    headers = auth(
        token,
        **TUS,
        **{"Upload-Offset": str(at), "Content-Type": "application/offset+octet-stream"},
    )
    return request(f"{base}/uploads/{upload}", "PATCH", piece, headers)


def begin_patch(port: int, token: str, upload: str, at: int, length: int) -> socket.socket:
    """A PATCH whose headers promise `length` bytes; the caller sends (some of) them."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=20)
    conn.sendall(
        (
            f"PATCH /api/v1/uploads/{upload} HTTP/1.1\r\nHost: t\r\n"
            f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: {at}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()
    )
    return conn


def send_until_heard(base: str, watcher: str, conn: socket.socket, piece: bytes) -> int:
    """Send `piece` a little at a time until the process says (an `upload.progress`
    event) it is reading this PATCH; how many bytes of it went."""

    async def scenario() -> int:
        ws = await listen(base, watcher)
        try:
            sent = 0
            heard = asyncio.ensure_future(events_until(ws, "upload.progress", 30))
            while not heard.done() and sent < len(piece):
                step = piece[sent : sent + 32 * 1024]
                await asyncio.to_thread(conn.sendall, step)
                sent += len(step)
                await asyncio.sleep(0.05)
            await heard
            return sent
        finally:
            await hang_up(ws)

    return asyncio.run(scenario())


def test_begun_on_a_killed_mid_patch_finished_through_b(running: Cluster, user: str) -> None:
    a, b, c = running.nodes["a"], running.nodes["b"], running.nodes["c"]
    token, watcher = running.token(user), running.token(user, "watcher")
    data = unique_jpeg((1600, 1200)) + b"\0" * (2 * 1024 * 1024)  # a JPEG may carry a tail
    upload = create(a.url, token, len(data))
    first = len(data) // 3
    status, _, body = patch(a.url, token, upload, 0, data[:first])
    assert status == 204, body
    conn = begin_patch(a.port, token, upload, first, len(data) - first)
    # A is reading the second PATCH (its progress event says so) when it is killed.
    half = first + send_until_heard(a.url, watcher, conn, data[first : (first + len(data)) // 2])
    running.nodes["a"].kill()
    conn.close()

    resumed = offset(b.url, token, upload)
    assert first <= resumed <= half
    status, headers, body = patch(b.url, token, upload, resumed, data[resumed:])
    assert status == 204, body
    image = headers["Tubei-Image-Id"]
    status, _, original = request(f"{c.url}/images/{image}/original", headers=auth(token))
    assert status == 200 and original == data
    running.restart("a")


def test_a_second_writer_on_another_process_gets_423(running: Cluster, user: str) -> None:
    b, c = running.nodes["b"], running.nodes["c"]
    token, watcher = running.token(user), running.token(user, "watcher")
    data = unique_jpeg((1200, 900)) + b"\0" * (1024 * 1024)
    upload = create(b.url, token, len(data))
    conn = begin_patch(b.port, token, upload, 0, len(data))
    try:
        sent = send_until_heard(b.url, watcher, conn, data[: len(data) // 2])
        status, _, body = patch(c.url, token, upload, 0, data)
        assert status == 423, body
        assert json.loads(body)["error"]["code"] == "upload_locked"
        conn.sendall(data[sent:])
        answer = conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 204"), answer[:300]
    finally:
        conn.close()
    image = next(
        line.split(b":", 1)[1].strip().decode()
        for line in answer.split(b"\r\n")
        if line.lower().startswith(b"tubei-image-id:")
    )
    deadline = time.monotonic() + 10
    while True:  # listed through the refused process too: its PATCH changed nothing
        status, _, original = request(f"{c.url}/images/{image}/original", headers=auth(token))
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200 and original == data
