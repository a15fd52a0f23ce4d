"""What the phone handed over, EXIF or not, as the catalog keeps it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from server.catalog import Catalog
from server.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from tests.catalog.records import blob, path, side_connection

__all__ = ["path"]  # a fixture, used by name

# what the phone handed over: EXIF or not -------------------------------------------


@pytest.mark.gen_test
async def test_exif_presence_is_stored_and_read_back(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    camera = dataclasses.replace(blob("camera"), exif=True)
    copy = dataclasses.replace(blob("copy"), exif=False)
    unknown = blob("unknown")
    for n, record in enumerate((camera, copy, unknown)):
        await catalog.add_image(alice.id, record, f"{n}.jpg", float(n))
    for record in (camera, copy, unknown):
        image = await catalog.get_image(alice.id, record.sha256)
        assert image is not None and image.blob.exif is record.exif
        found = await catalog.get_blob(record.sha256)
        assert found is not None and found.exif is record.exif
    listed = {
        image.sha256: image.blob.exif for image in await catalog.list_images(alice.id, 10, None)
    }
    assert listed == {camera.sha256: True, copy.sha256: False, unknown.sha256: None}


@pytest.mark.gen_test
async def test_a_version_4_catalog_gains_exif_unknown_and_learns_it_on_upload(
    path: Path,
) -> None:
    db = side_connection(path)
    for migration in MIGRATIONS[:4]:
        for statement in migration.split(";"):
            if statement.strip():
                db.execute(statement)
    old = blob("old")
    db.execute("INSERT INTO users (name, created_at) VALUES ('alice', 0)")
    db.execute(
        "INSERT INTO blobs (sha256, md5, size, format, mime, has_gps, decodable, created_at) "
        "VALUES (?, ?, ?, 'JPEG', 'image/jpeg', 0, 1, 0)",
        (old.sha256, old.md5, old.size),
    )
    db.execute("PRAGMA user_version = 4")
    db.close()

    catalog = SQLiteCatalog(path)
    try:
        assert catalog.schema_version == len(MIGRATIONS)
        found = await catalog.get_blob(old.sha256)
        assert found is not None and found.exif is None, "not known for what came before"
        alice = await catalog.ensure_user("alice")
        await catalog.add_image(alice.id, dataclasses.replace(old, exif=True), "a.jpg", 1.0)
        found = await catalog.get_blob(old.sha256)
        assert found is not None and found.exif is True
        # Known once, it is not overwritten by a later record of the same bytes.
        await catalog.add_image(alice.id, dataclasses.replace(old, exif=False), "b.jpg", 2.0)
        found = await catalog.get_blob(old.sha256)
        assert found is not None and found.exif is True
    finally:
        catalog.close_now()
