"""`python -m server scrub [--repair]`, run as a real process on a real data folder."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import sqlite3
import subprocess
import sys
from pathlib import Path

import tornado.ioloop

from server.config import Settings
from server.services import build_services
from tests.conftest import unique_jpeg
from tests.server_cli import ROOT, cli, environment, free_port, last_line, serving


def blob_file(data: Path, sha256: str) -> Path:
    return data / "blobs" / sha256[:2] / sha256[2:4] / sha256


def thumbnails_of(data: Path, sha256: str) -> list[Path]:
    return sorted((data / "thumbs").rglob(f"{sha256}-*.jpg"))


def library(io_loop: tornado.ioloop.IOLoop, data: Path, photos: dict[str, bytes]) -> list[str]:
    """Photos (filename -> bytes) in mia's library, thumbnails made; their sha256s."""

    async def ingest() -> list[str]:
        services = build_services(Settings(data=data))
        try:
            user = (await services.auth.issue_token("mia", "test")).user
            for filename, photo in photos.items():
                async with services.library.writing() as writer:
                    await writer.write(photo)
                    await services.library.ingest_one(user, writer, filename)
            await services.library.thumbnails.drain()
        finally:
            await services.close()
        return [hashlib.sha256(photo).hexdigest() for photo in photos.values()]

    shas: list[str] = io_loop.run_sync(ingest)
    return shas


def damage_in_catalog(data: Path, sha256: str) -> str | None:
    db = sqlite3.connect(data / "catalog.sqlite3")
    try:
        row = db.execute("SELECT damage FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
    finally:
        db.close()
    damage: str | None = row[0]
    return damage


def test_scrub_beside_a_running_server_and_the_server_refuses_what_it_found(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    good, bad = unique_jpeg((90, 60)), unique_jpeg((90, 60))
    good_sha, bad_sha = (hashlib.sha256(p).hexdigest() for p in (good, bad))
    with serving(tmp_path, flags, environment(), port) as server:
        token = last_line(cli("token", "--data", str(data), "--user", "nina").stdout)
        server.upload(token, [("a", "good.jpg", good), ("b", "IMG_0007.jpg", bad)])
        assert cli("scrub", "--data", str(data)).returncode == 0

        path = blob_file(data, bad_sha)
        rotten = bytearray(path.read_bytes())
        rotten[200] ^= 0x10
        path.write_bytes(rotten)
        scrubbed = cli("scrub", "--data", str(data))
        assert scrubbed.returncode == 1, scrubbed.stdout + scrubbed.stderr
        assert f"mismatch  {bad_sha}  nina: IMG_0007.jpg" in scrubbed.stdout
        assert hashlib.sha256(rotten).hexdigest() in scrubbed.stdout
        assert good_sha not in scrubbed.stdout
        assert "not clean: 1 mismatched" in scrubbed.stdout
        # stderr is a pipe here: plain progress lines, no bar drawn over itself.
        assert "scrub: 100% (2 of 2" in scrubbed.stderr and "\r" not in scrubbed.stderr
        assert damage_in_catalog(data, bad_sha) == "mismatch"

        # The server reads the mark the scrub wrote, and stops serving those bytes.
        status, body = server.fetch(f"/images/{bad_sha}/original", token)
        assert status == 410 and json.loads(body)["error"]["code"] == "image_damaged"
        assert server.call(f"/images/{bad_sha}", token)["damaged"] is True
        assert server.fetch(f"/images/{good_sha}/original", token) == (200, good)

        refused = cli("scrub", "--repair", "--data", str(data))
        assert refused.returncode == 2
        assert "another Tubei server is using" in refused.stderr
        assert "scrub without --repair" in refused.stderr
        assert path.exists(), "nothing moved while the server runs"

        server.upload(token, [("b", "IMG_0007.jpg", bad)])  # the same photo again heals it
        assert server.fetch(f"/images/{bad_sha}/original", token) == (200, bad)
        assert server.stop() == 0
    healed = cli("scrub", "--data", str(data))
    assert healed.returncode == 0, healed.stdout
    assert healed.stdout.rstrip().endswith("clean: every blob matches its name and the catalog")


def test_scrub_repair_quarantines_makes_thumbnails_and_says_what_is_left(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> None:
    data = tmp_path / "data"
    kept, gone = library(io_loop, data, {"kept.jpg": unique_jpeg(), "gone.jpg": unique_jpeg()})
    orphan = b"a file no catalog row knows"
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    blob_file(data, orphan_sha).parent.mkdir(parents=True, exist_ok=True)
    blob_file(data, orphan_sha).write_bytes(orphan)
    made = thumbnails_of(data, kept)
    assert made
    for path in made:
        path.unlink()

    repaired = cli("scrub", "--repair", "--data", str(data))
    assert repaired.returncode == 0, repaired.stdout  # orphans and thumbnails: all dealt with
    assert f"orphan    {orphan_sha}  (no photo refers to it)" in repaired.stdout
    assert "repaired: 1 orphaned, 1 without some thumbnails" in repaired.stdout
    (quarantined,) = (data / "quarantine" / "orphan").iterdir()
    assert quarantined.read_bytes() == orphan
    assert thumbnails_of(data, kept) == made

    blob_file(data, gone).unlink()
    for args in (["scrub"], ["scrub", "--repair"]):
        run = cli(*args, "--data", str(data))
        assert run.returncode == 1, run.stdout  # no scrub mends a lost original
        assert f"missing   {gone}  mia: gone.jpg" in run.stdout
        assert "upload each again" in run.stdout
    assert damage_in_catalog(data, gone) == "missing"
    assert (data / "quarantine" / "orphan").exists()  # the quarantine is never emptied


def test_scrub_draws_a_bar_on_a_terminal(tmp_path: Path, io_loop: tornado.ioloop.IOLoop) -> None:
    data = tmp_path / "data"
    library(io_loop, data, {f"{n}.jpg": unique_jpeg() for n in range(3)})
    leader, follower = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "server", "scrub", "--data", str(data)],
            cwd=ROOT,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=30,
            check=False,
        )
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert process.returncode == 0, process.stdout
    screen = drawn.decode()
    assert "\rscrub [" in screen and "#" * 30 + "] 100%" in screen, screen
    assert " 3/3 " in screen and screen.endswith("\r\n"), screen
    assert "scrub:" not in screen, "no plain lines on a terminal"
    assert process.stdout.rstrip().endswith("clean: every blob matches its name and the catalog")


def test_scrub_is_listed_in_the_help() -> None:
    helped = cli("--help")
    assert "scrub" in helped.stdout
    helped = cli("scrub", "--help")
    assert "--repair" in helped.stdout and "quarantine" in helped.stdout
