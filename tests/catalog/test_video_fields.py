"""A blob's kind, duration and codec: stored by both backends, and a catalog made before
videos were kept reads every blob it holds as a photo once migrated."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from server.catalog import Catalog
from server.catalog import postgres as pg
from server.catalog import sqlite as lite
from tests import postgres_server
from tests.catalog.test_sqlite import blob


def _video_migration(migrations: list[str]) -> int:
    return migrations.index(next(m for m in migrations if "ADD COLUMN kind" in m))


def insert_old_photo(execute: Callable[..., Any], mark: str) -> None:
    old = blob("from before videos")
    execute(
        "INSERT INTO blobs (sha256, md5, size, format, mime, has_gps, decodable, created_at) "
        f"VALUES ({mark}, {mark}, 3, 'JPEG', 'image/jpeg', {mark}, {mark}, 1)",
        (old.sha256, old.md5, False, True),
    )


async def assert_migrated(catalog: Catalog) -> None:
    found = await catalog.get_blob(blob("from before videos").sha256)
    assert found is not None
    assert (found.kind, found.duration, found.codec) == ("photo", None, None)
    alice = await catalog.ensure_user("alice")
    video = dataclasses.replace(
        blob("a video after"), kind="video", duration=3.5, codec="h264", format="MP4"
    )
    await catalog.add_image(alice.id, video, "clip.mp4", 2.0)
    assert await catalog.get_blob(video.sha256) == video


@pytest.mark.gen_test
async def test_an_sqlite_catalog_from_before_videos_reads_its_blobs_as_photos(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.sqlite3"
    before = _video_migration(lite.MIGRATIONS)
    assert 0 < before < len(lite.MIGRATIONS)
    db = sqlite3.connect(path, isolation_level=None)
    for migration in lite.MIGRATIONS[:before]:
        db.executescript(migration)
    insert_old_photo(db.execute, "?")
    db.execute(f"PRAGMA user_version = {before}")
    db.close()
    catalog = lite.SQLiteCatalog(path)
    try:
        await assert_migrated(catalog)
    finally:
        await catalog.close()


@pytest.mark.skipif(postgres_server.problem() is not None, reason="no PostgreSQL")
@pytest.mark.gen_test
async def test_a_postgres_catalog_from_before_videos_reads_its_blobs_as_photos() -> None:
    url = postgres_server.create_database()
    try:
        before = _video_migration(pg.MIGRATIONS)
        assert 0 < before < len(pg.MIGRATIONS)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for number, migration in enumerate(pg.MIGRATIONS[:before], start=1):
                conn.execute(migration.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
            insert_old_photo(conn.execute, "%s")
        catalog = pg.PostgresCatalog(url)
        await catalog.start()
        try:
            await assert_migrated(catalog)
        finally:
            await catalog.close()
    finally:
        postgres_server.drop_database(url)
