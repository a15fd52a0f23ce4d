"""A catalog made before motion photos and Live Photos were read: once migrated, every
blob it holds is a plain photo (no video part, no Apple identifier), on both backends."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from server.catalog import Catalog
from server.catalog import postgres as pg
from server.catalog import sqlite as lite
from tests.catalog.old_schema import postgres_catalog_at, sqlite_catalog_at, version_before
from tests.catalog.records import blob
from tests.catalog.test_video_fields import insert_old_photo


async def assert_migrated(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    old = blob("from before videos")
    await catalog.add_image(alice.id, old, "old.jpg", 2.0)  # the row exists: kept as it was
    found = await catalog.get_image(alice.id, old.sha256)
    assert found is not None and found.live_partner is None
    assert (found.blob.motion_offset, found.blob.motion_length, found.blob.live_id) == (
        None,
        None,
        None,
    )
    motion = dataclasses.replace(
        blob("a motion photo after"), motion_offset=100, motion_length=900, live_id="X-1"
    )
    await catalog.add_image(alice.id, motion, "m.jpg", 3.0)
    assert await catalog.get_blob(motion.sha256) == motion


@pytest.mark.gen_test
async def test_an_sqlite_catalog_from_before_motion_photos(tmp_path: Path) -> None:
    version = version_before(lite.MIGRATIONS, "ADD COLUMN motion_offset")
    async with sqlite_catalog_at(
        tmp_path / "catalog.sqlite3", version, insert_old_photo
    ) as catalog:
        await assert_migrated(catalog)


@pytest.mark.gen_test
async def test_a_postgres_catalog_from_before_motion_photos() -> None:
    version = version_before(pg.MIGRATIONS, "ADD COLUMN motion_offset")
    async with postgres_catalog_at(version, insert_old_photo) as catalog:
        await assert_migrated(catalog)
