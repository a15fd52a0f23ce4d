"""A server that answers before reading a body still gets its answer to the client.

The client here sends its whole body before it reads, as urllib does and as nginx may
when it streams an upload: without the lingering close the server's close resets the
connection and the answer written just before is lost.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from server import lingering
from tests.serve_process import serving

BODY = 8 * 1024 * 1024  # far past --max-unauthenticated-body and any socket buffer


# An upload from a stranger, refused (401) before its body is read.
STRANGERS_UPLOAD = (
    f"POST /api/v1/images HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer nope\r\n"
    f"Content-Type: multipart/form-data; boundary=x\r\n"
    f"Content-Length: {BODY}\r\n\r\n"
).encode()


def send_whole_then_read(port: int, head: bytes, body_size: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(head)
        piece = b"\0" * (256 * 1024)
        left = body_size
        while left:  # a reset here is what urllib and nginx would fail on
            left -= conn.send(piece[: min(left, len(piece))])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def test_an_early_answer_survives_the_unread_body(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        for _ in range(3):
            answer = send_whole_then_read(server.port, STRANGERS_UPLOAD, BODY)
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line == b"HTTP/1.1 401 Unauthorized", answer[:300]
            body = rest.split(b"\r\n\r\n", 1)[1]
            assert json.loads(body)["error"]["code"] == "unauthorized"
        assert server.health() == 200


def test_an_answer_before_the_body_arrives_does_not_reset_the_body_after_it(
    tmp_path: Path,
) -> None:
    """The answer goes out before a byte of the body has arrived, so nothing is unread
    when the server closes; the client, reading first, sends its body only then."""
    with serving(tmp_path) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
            conn.sendall(STRANGERS_UPLOAD)
            answer = b""
            while chunk := conn.recv(65536):  # the answer, then the server's FIN
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 401 Unauthorized"), answer[:300]
            piece = b"\0" * (256 * 1024)
            for _ in range(8):  # 2 MiB: a reset would fail these sends
                conn.sendall(piece)
        assert server.health() == 200


def accepted_with_unread_bytes(count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """`count` (client, accepted) pairs whose client has sent bytes the server never read."""
    with socket.create_server(("127.0.0.1", 0), backlog=count) as listener:
        port = listener.getsockname()[1]
        clients, accepted = [], []
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(b"unread body bytes")
            clients.append(client)
            connection, _ = listener.accept()
            connection.setblocking(False)  # as Tornado keeps every connection
            accepted.append(lingering.lingering(connection))
    return clients, accepted


@pytest.mark.gen_test(timeout=20)
async def test_at_most_so_many_linger_and_each_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lingering, "LINGER_SECONDS", 2.0)
    extra = 6
    clients, accepted = accepted_with_unread_bytes(lingering.LINGER_AT_MOST + extra)
    try:
        for connection in accepted:
            await asyncio.sleep(0)  # the unread bytes are in its receive buffer by now
            connection.close()
        assert lingering.lingering_now() == lingering.LINGER_AT_MOST
        closed_at_once = [c for c in accepted if c.fileno() < 0]
        assert len(closed_at_once) == extra  # past the cap: no descriptor held for them
        # A peer that closes its side ends its linger; the silent ones end at the timeout.
        for client in clients[: lingering.LINGER_AT_MOST // 2]:
            client.close()
        await asyncio.sleep(0.5)  # within the linger: only the closed peers' have ended
        assert lingering.lingering_now() == lingering.LINGER_AT_MOST // 2
        await asyncio.sleep(lingering.LINGER_SECONDS)
        assert lingering.lingering_now() == 0
        assert all(c.fileno() < 0 for c in accepted)
    finally:
        for client in clients:
            client.close()
