"""A blob's kind, duration and codec: stored by both backends, and a catalog made before
videos were kept reads every blob it holds as a photo once migrated."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.catalog import Catalog
from server.catalog import postgres as pg
from server.catalog import sqlite as lite
from tests.catalog.old_schema import postgres_catalog_at, sqlite_catalog_at, version_before
from tests.catalog.records import blob


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
    version = version_before(lite.MIGRATIONS, "ADD COLUMN kind")
    async with sqlite_catalog_at(
        tmp_path / "catalog.sqlite3", version, insert_old_photo
    ) as catalog:
        await assert_migrated(catalog)


@pytest.mark.gen_test
async def test_a_postgres_catalog_from_before_videos_reads_its_blobs_as_photos() -> None:
    version = version_before(pg.MIGRATIONS, "ADD COLUMN kind")
    async with postgres_catalog_at(version, insert_old_photo) as catalog:
        await assert_migrated(catalog)
