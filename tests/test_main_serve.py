"""`python -m server serve`: photos kept across a restart, pairing codes, a busy port."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from PIL import Image

from tests.conftest import unique_jpeg
from tests.server_cli import Server, cli, environment, free_port, last_line, request, serving


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (9, 99, 199)).save(out, "PNG")
    return out.getvalue()


# serve ----------------------------------------------------------------------------


def test_serve_keeps_photos_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    jpeg, png = unique_jpeg((80, 60)), png_bytes()
    with serving(tmp_path, flags, environment(), port) as server:
        made = cli("token", "--data", str(data), "--user", "erin")  # while the server runs
        assert made.returncode == 0, made.stderr
        token = last_line(made.stdout)
        uploaded = server.upload(token, [("a", "one.jpg", jpeg), ("b", "two.jpg", png)])
        assert [i["sha256"] for i in uploaded["items"]] == [
            hashlib.sha256(jpeg).hexdigest(),
            hashlib.sha256(png).hexdigest(),
        ]
        listing = server.call("/images", token)
        assert len(listing["items"]) == 2

        paired = cli("pair", "--data", str(data), "--user", "frank", *flags[:4])
        code = urllib.parse.parse_qs(re.findall(r"tubei://pair\?(\S+)", paired.stdout)[0])["code"]
        status, _, answer = request(
            server.url + "/auth/pair", "POST", json.dumps({"code": code[0]}).encode()
        )
        assert status == 200, answer
        assert server.call("/images", json.loads(answer)["token"])["items"] == []

        second_port = free_port()
        second = cli(
            "serve", "--host", "127.0.0.1", "--port", str(second_port), "--data", str(data)
        )
        assert second.returncode != 0
        assert f"another Tubei server is using {data}" in second.stderr
        assert "Traceback" not in second.stderr
        gc = cli("gc", "--data", str(data))
        assert gc.returncode == 2
        assert "another Tubei server is using" in gc.stderr

        assert server.stop() == 0

    again_port = free_port()
    env = environment(TUBEI_HOST="127.0.0.1", TUBEI_PORT=str(again_port), TUBEI_DATA=str(data))
    with serving(tmp_path, [], env, again_port) as restarted:
        again = restarted.call("/images", token)
        signed = {item["id"]: item.pop("signed_urls") for item in listing["items"]}
        for item in again["items"]:
            item.pop("signed_urls")
        assert again == listing
        for original in (jpeg, png):
            sha = hashlib.sha256(original).hexdigest()
            status, body = restarted.fetch(f"/images/{sha}/original", token)
            assert status == 200
            assert body == original
            # The signing key is kept in the catalog: URLs issued before still open.
            root = f"http://127.0.0.1:{again_port}"
            status, _, body = request(root + signed[sha]["original"])
            assert (status, body) == (200, original)
        assert restarted.stop() == 0


def started_log(server: Server, wanted: tuple[str, ...]) -> str:
    """The server's output once a line holding one of `wanted` is in it."""
    deadline = time.monotonic() + 15
    while not any(text in (log := server.log.read_text()) for text in wanted):
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    return log


def test_serve_prints_a_pairing_code_until_a_device_is_paired(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    said = ("Pairing code for", "to pair another device")
    with serving(tmp_path, flags, environment(), port) as first:
        log = started_log(first, said)
        (code,) = re.findall(r"Pairing code for \S+: (\d{6})", log)
        status, _, answer = request(
            first.url + "/auth/pair", "POST", json.dumps({"code": code}).encode()
        )
        assert status == 200, answer
        assert first.stop() == 0
    with serving(tmp_path, flags, environment(), port) as again:
        log = started_log(again, said)
        assert "Pairing code for" not in log and "tubei://pair" not in log
        assert "python -m server pair" in log
        assert again.stop() == 0


def test_serve_on_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli("serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(tmp_path))
    assert run.returncode == 2
    assert str(port) in run.stderr
    assert "Traceback" not in run.stderr
