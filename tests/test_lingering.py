"""A server that answers before reading a body still gets its answer to the client.

The client here sends its whole body before it reads, as urllib does and as nginx may
when it streams an upload: without the lingering close the server's close resets the
connection and the answer written just before is lost.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.serve_process import serving

BODY = 8 * 1024 * 1024  # far past --max-unauthenticated-body and any socket buffer


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
            head = (
                f"POST /api/v1/images HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer nope\r\n"
                f"Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {BODY}\r\n\r\n"
            ).encode()
            answer = send_whole_then_read(server.port, head, BODY)
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line == b"HTTP/1.1 401 Unauthorized", answer[:300]
            body = rest.split(b"\r\n\r\n", 1)[1]
            assert json.loads(body)["error"]["code"] == "unauthorized"
        assert server.health() == 200
