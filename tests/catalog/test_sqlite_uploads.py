"""The catalog's tus upload rows, from creation to completion and expiry."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.catalog import Catalog
from server.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from tests.catalog.records import blob, path, side_connection, upload

__all__ = ["path"]  # a fixture, used by name

# tus uploads ----------------------------------------------------------------------


def test_a_version_1_catalog_gains_the_uploads_table_and_keeps_its_data(path: Path) -> None:
    db = side_connection(path)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT INTO users (name, created_at) VALUES ('before', 0)")
    db.execute("PRAGMA user_version = 1")
    db.close()
    SQLiteCatalog(path).close_now()
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT name FROM users").fetchall() == [("before",)]
    columns = [row[1] for row in db.execute("PRAGMA table_info(uploads)")]
    assert columns == [
        "id",
        "user_id",
        "length",
        "offset",
        "metadata",
        "created_at",
        "expires_at",
        "image_sha256",
        "duplicate",
    ]
    db.close()


@pytest.mark.gen_test
async def test_upload_rows_from_creation_to_completion(path: Path) -> None:
    catalog = SQLiteCatalog(path)
    alice = await catalog.ensure_user("alice")
    made = upload("u" * 22, alice.id)
    await catalog.add_upload(made)
    assert await catalog.get_upload(made.id) == made
    assert await catalog.get_upload("missing") is None

    moved = await catalog.set_upload_offset(made.id, 400, 200.0)
    assert moved is not None and (moved.offset, moved.expires_at) == (400, 200.0)
    assert not moved.complete
    assert await catalog.set_upload_offset("missing", 1, 1.0) is None

    done = await catalog.complete_upload(made.id, "ab" * 32, True, 300.0)
    assert done is not None and done.complete
    assert (done.offset, done.image_sha256, done.duplicate) == (1000, "ab" * 32, True)
    await catalog.close()

    reopened = SQLiteCatalog(path)
    try:
        again = await reopened.get_upload(made.id)
        assert again == done and again.metadata == made.metadata
        assert await reopened.delete_upload(made.id) is True
        assert await reopened.delete_upload(made.id) is False
        assert await reopened.upload_ids() == set()
    finally:
        await reopened.close()


@pytest.mark.gen_test
async def test_expired_uploads_are_those_past_their_time(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    for name, expires_at in (("old", 10.0), ("edge", 20.0), ("new", 30.0)):
        await catalog.add_upload(upload(name * 8, alice.id, expires_at))
    assert [u.id for u in await catalog.expired_uploads(20.0)] == ["old" * 8, "edge" * 8]
    assert await catalog.upload_ids() == {"old" * 8, "edge" * 8, "new" * 8}


@pytest.mark.gen_test
async def test_a_finished_upload_does_not_keep_its_blob(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    photo = blob("uploaded")
    await catalog.add_image(alice.id, photo, "u.jpg", 1.0)
    await catalog.add_upload(upload("done" * 6, alice.id))
    await catalog.complete_upload("done" * 6, photo.sha256, False, 100.0)
    await catalog.trash(alice.id, photo.sha256, 2.0)
    await catalog.purge(alice.id, photo.sha256, 50.0)
    assert await catalog.drop_unreferenced_blobs(50.0) == [photo.sha256]
    assert (await catalog.get_upload("done" * 6)) is not None
