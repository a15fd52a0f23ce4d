"""The command line, run as real processes: token, pair, serve (and restart), gc, settings."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import tornado.ioloop
from PIL import Image

from server.config import Settings
from server.services import build_services
from tests.conftest import multipart, unique_jpeg

ROOT = Path(__file__).resolve().parents[1]
QR_BLOCKS = set("█▀▄ ")


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (9, 99, 199)).save(out, "PNG")
    return out.getvalue()


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEI_")}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env=environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    sent = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class Server:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log
        self.url = f"http://127.0.0.1:{port}/api/v1"

    def call(self, path: str, token: str, method: str = "GET", body: Any = None) -> Any:
        raw = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, _, answer = request(self.url + path, method, raw, headers)
        assert status == 200, (status, answer)
        return json.loads(answer)

    def fetch(self, path: str, token: str) -> tuple[int, bytes]:
        status, _, answer = request(self.url + path, headers={"Authorization": f"Bearer {token}"})
        return status, answer

    def upload(self, token: str, files: list[tuple[str, str, bytes]]) -> Any:
        body, content_type = multipart(files)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        status, _, answer = request(self.url + "/images", "POST", body, headers)
        assert status == 200, answer
        return json.loads(answer)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)


@contextmanager
def serving(tmp_path: Path, args: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    log = tmp_path / f"serve-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited {process.returncode}:\n{log.read_text()}")
            try:
                status, _, body = request(server.url + "/health")
                if status == 200 and json.loads(body)["status"] == "ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer /health:\n{log.read_text()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def last_line(text: str) -> str:
    return text.rstrip("\n").rsplit("\n", 1)[-1]


def authenticates(io_loop: tornado.ioloop.IOLoop, data: Path, token: str) -> str | None:
    """The user this token belongs to, asked of the catalog in `data` itself."""

    async def ask() -> str | None:
        services = build_services(Settings(data=data))
        try:
            found = await services.auth.authenticate(token)
            return None if found is None else found[0].name
        finally:
            await services.close()

    return io_loop.run_sync(ask)


# token and pair ---------------------------------------------------------------


def test_token_prints_the_token_as_its_last_line(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    made = cli(
        "token", "--data", str(data), "--user", "dave", env=environment(TUBEI_DATA=str(elsewhere))
    )
    assert made.returncode == 0, made.stderr
    token = last_line(made.stdout)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", token), made.stdout
    assert (data / "catalog.sqlite3").exists()
    assert not elsewhere.exists()  # --data wins over TUBEI_DATA

    again = cli(
        "token", "--user", "dave", "--device", "laptop", env=environment(TUBEI_DATA=str(data))
    )
    assert again.returncode == 0, again.stderr
    second = last_line(again.stdout)
    assert second != token
    assert authenticates(io_loop, data, token) == "dave"
    assert authenticates(io_loop, data, second) == "dave"
    assert authenticates(io_loop, data, token[:-1]) is None


def test_pair_prints_a_code_a_link_and_a_qr_code(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> None:
    data = tmp_path / "data"
    args = ["pair", "--data", str(data), "--user", "carol", "--host", "127.0.0.1", "--port", "8123"]
    made = cli(*args)
    assert made.returncode == 0, made.stderr
    links = re.findall(r"tubei://pair\?\S+", made.stdout)
    assert len(links) == 1, made.stdout
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(links[0]).query)
    assert query["server"] == ["http://127.0.0.1:8123"]
    (code,) = query["code"]
    assert re.fullmatch(r"\d{6}", code)
    assert re.search(rf"\b{code}\b", made.stdout.replace(links[0], ""))
    qr_rows = [
        line for line in made.stdout.splitlines() if len(line) >= 21 and set(line) <= QR_BLOCKS
    ]
    assert len(qr_rows) >= 10, made.stdout
    assert any("█" in row for row in qr_rows)

    async def redeem() -> str:
        services = build_services(Settings(data=data))
        try:
            return (await services.auth.pair(code, "phone", address="127.0.0.1")).user.name
        finally:
            await services.close()

    assert io_loop.run_sync(redeem) == "carol"

    public = cli("pair", "--data", str(data), "--public-url", "https://photos.example/")
    assert public.returncode == 0, public.stderr
    (link,) = re.findall(r"tubei://pair\?\S+", public.stdout)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["server"] == ["https://photos.example"]
    assert query["code"] != [code]


def test_a_user_name_is_required(tmp_path: Path) -> None:
    for args in (["token", "--user", ""], ["token", "--user", "  "], ["pair", "--user", ""]):
        run = cli(*args, "--data", str(tmp_path / "data"))
        assert run.returncode == 2, args
        assert "not a user name" in run.stderr
        assert run.stdout == ""
    assert not (tmp_path / "data").exists()


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


# gc and the data folder ----------------------------------------------------------


def test_gc_removes_orphans_and_stale_temp_files(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> None:
    data = tmp_path / "data"
    settings = Settings(data=data)
    kept, trashed = unique_jpeg(), unique_jpeg()

    async def ingest() -> None:
        services = build_services(settings)
        try:
            user = await services.auth.issue_token("gina", "test")
            for photo in (kept, trashed):
                async with services.library.writing() as writer:
                    await writer.write(photo)
                    await services.library.ingest_one(user.user, writer, "p.jpg")
            await services.library.trash(user.user, hashlib.sha256(trashed).hexdigest())
        finally:
            await services.close()

    io_loop.run_sync(ingest)
    orphan_bytes = b"bytes the catalog never heard of"
    orphan_sha = hashlib.sha256(orphan_bytes).hexdigest()
    orphan = data / "blobs" / orphan_sha[:2] / orphan_sha[2:4] / orphan_sha
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(orphan_bytes)
    orphan_thumb = data / "thumbs" / orphan_sha[:2] / orphan_sha[2:4] / f"{orphan_sha}-360.jpg"
    orphan_thumb.parent.mkdir(parents=True, exist_ok=True)
    orphan_thumb.write_bytes(b"thumb")
    stale, fresh = data / "tmp" / "abandoned.part", data / "tmp" / "in-progress.part"
    stale.write_bytes(b"half an upload")
    fresh.write_bytes(b"an upload going on")
    long_ago = time.time() - 7 * 3600
    os.utime(stale, (long_ago, long_ago))
    thumbs_before = sorted(p.name for p in (data / "thumbs").rglob("*.jpg") if p != orphan_thumb)

    run = cli("gc", "--data", str(data))
    assert run.returncode == 0, run.stderr
    assert "stale temp files: 1" in run.stdout
    assert not orphan_thumb.exists()
    assert not stale.exists()
    assert fresh.exists()
    # A file placed a moment ago may be about to be recorded: kept for the grace period.
    assert "orphan files: 0" in run.stdout
    assert orphan.exists()
    run = cli("gc", "--data", str(data), "--gc-grace", "0")
    assert run.returncode == 0, run.stderr
    assert "orphan files: 1" in run.stdout
    assert not orphan.exists()
    for photo in (kept, trashed):
        sha = hashlib.sha256(photo).hexdigest()
        assert (data / "blobs" / sha[:2] / sha[2:4] / sha).read_bytes() == photo
    assert sorted(p.name for p in (data / "thumbs").rglob("*.jpg")) == thumbs_before


def test_gc_removes_expired_uploads_and_their_stray_files(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> None:
    data = tmp_path / "data"
    settings = Settings(data=data, upload_expiry=0.05)

    async def start_uploads() -> None:
        services = build_services(settings)
        try:
            user = await services.catalog.ensure_user("hugo")
            for _ in range(2):
                upload = await services.uploads.create(user, 1000, {})
                transfer = await services.uploads.begin(user, upload.id)
                await transfer.write(b"partial upload")
                await transfer.keep()
        finally:
            await services.close()

    io_loop.run_sync(start_uploads)
    stray = data / "tmp" / "tus" / "left-by-a-crash"
    stray.write_bytes(b"no row knows me")
    time.sleep(0.1)
    run = cli("gc", "--data", str(data))
    assert run.returncode == 0, run.stderr
    assert "uploads expired: 2, abandoned upload files: 1" in run.stdout
    assert list((data / "tmp" / "tus").iterdir()) == []
    db = sqlite3.connect(data / "catalog.sqlite3")
    assert db.execute("SELECT count(*) FROM uploads").fetchone() == (0,)
    db.close()


def test_a_newer_catalog_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("token", "--data", str(data), "--user", "x").returncode == 0
    db = sqlite3.connect(data / "catalog.sqlite3")
    db.execute("PRAGMA user_version = 999")
    db.close()
    run = cli("token", "--data", str(data), "--user", "x")
    assert run.returncode == 2
    assert "newer than this server knows" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


# settings from the environment ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "args", "named"),
    [
        ({"TUBEI_PORT": "abc"}, ["--host", "127.0.0.1"], "TUBEI_PORT"),
        (
            {"TUBEI_MAX_UPLOAD_SIZE": "lots"},
            ["--host", "127.0.0.1", "--port", "0"],
            "TUBEI_MAX_UPLOAD_SIZE",
        ),
        ({}, ["--host", "127.0.0.1", "--port", "abc"], "--port"),
    ],
)
def test_a_malformed_setting_is_exit_2_naming_it(
    tmp_path: Path, extra: dict[str, str], args: list[str], named: str
) -> None:
    data = tmp_path / "data"
    run = cli("serve", "--data", str(data), *args, env=environment(**extra))
    assert run.returncode == 2
    assert named in run.stderr
    assert "Traceback" not in run.stderr
    assert not data.exists()  # refused before touching anything
