"""Two real `serve` processes sharing one data folder and a PostgreSQL catalog: a tus
upload begun on one, whose process is killed mid-PATCH, is finished through the other,
byte-exact."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import postgres_server
from tests.conftest import unique_jpeg
from tests.server_cli import cli, environment, free_port, last_line, request, serving

pytestmark = pytest.mark.skipif(
    postgres_server.problem() is not None, reason=str(postgres_server.problem())
)

TUS = {"Tus-Resumable": "1.0.0"}


def patch(url: str, token: str, offset: int, body: bytes) -> tuple[int, dict[str, str]]:
    status, headers, _ = request(
        url,
        "PATCH",
        body,
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            **TUS,
        },
    )
    return status, headers


def head_offset(url: str, token: str) -> int:
    status, headers, _ = request(url, "HEAD", None, {"Authorization": f"Bearer {token}", **TUS})
    assert status == 200, status
    return int(headers["Upload-Offset"])


def until(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_an_upload_begun_on_a_killed_process_is_finished_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    data_dir = tmp_path / "data"
    made = cli("token", "--data", str(data_dir), "--catalog", postgres_url, "--user", "mum")
    assert made.returncode == 0, made.stderr
    token = last_line(made.stdout)
    env = environment(TUBEI_CATALOG=postgres_url)
    data = unique_jpeg() + os.urandom(900_000)
    port_a, port_b = free_port(), free_port()

    def flags(port: int) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(port), "--data", str(data_dir)]

    with (
        serving(tmp_path, flags(port_a), env, port_a) as a,
        serving(tmp_path, flags(port_b), env, port_b) as b,
    ):
        status, headers, _ = request(
            a.url + "/uploads/",
            "POST",
            b"",
            {"Authorization": f"Bearer {token}", "Upload-Length": str(len(data)), **TUS},
        )
        assert status == 201
        path = headers["Location"].split("/api/v1", 1)[-1]
        upload_id = path.rsplit("/", 1)[-1]
        staged = data_dir / "tmp" / "tus" / upload_id
        # B writes first (and keeps its writer), then A moves the upload on.
        assert patch(b.url + path, token, 0, data[:100_000])[0] == 204
        assert patch(a.url + path, token, 100_000, data[100_000:200_000])[0] == 204
        assert head_offset(b.url + path, token) == 200_000

        # A PATCH to A that stops half-way: A holds the upload while it waits for the rest.
        sent = data[200_000:500_000]
        stream = socket.create_connection(("127.0.0.1", port_a))
        try:
            stream.sendall(
                (
                    f"PATCH /api/v1{path} HTTP/1.1\r\nHost: a\r\n"
                    f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
                    "Content-Type: application/offset+octet-stream\r\n"
                    f"Upload-Offset: 200000\r\nContent-Length: {len(data) - 200_000}\r\n\r\n"
                ).encode()
                + sent
            )
            until(lambda: staged.stat().st_size > 200_000, "A writes the bytes it was sent")
            # Meanwhile B refuses to write, and to delete, whatever it is asked.
            assert patch(b.url + path, token, 200_000, data[200_000:])[0] == 423
            status, _, _ = request(
                b.url + path, "DELETE", None, {"Authorization": f"Bearer {token}", **TUS}
            )
            assert status == 423
            a.process.send_signal(signal.SIGKILL)
            assert a.process.wait(timeout=15) == -signal.SIGKILL
        finally:
            stream.close()

        # A died with unrecorded bytes in the file: B answers the durable offset...
        assert staged.stat().st_size > 200_000
        assert head_offset(b.url + path, token) == 200_000
        # ...and, the dead process's lock gone with it, takes the upload from there.
        status, headers = patch(b.url + path, token, 200_000, data[200_000:])
        assert status == 204, headers
        image = hashlib.sha256(data).hexdigest()
        assert headers["Tubei-Image-Id"] == image
        status, _, original = request(
            f"{b.url}/images/{image}/original", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 200 and original == data
        assert not staged.exists()
        assert "Traceback" not in b.log.read_text()
        assert b.stop() == 0
