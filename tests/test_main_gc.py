"""`python -m server gc` and the data folder: orphans, stale files, expired uploads."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import tornado.ioloop

from server.config import Settings
from server.services import build_services
from tests.conftest import unique_jpeg
from tests.server_cli import cli

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
