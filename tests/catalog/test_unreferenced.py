"""Blobs with no entry are marked, not forgotten; gc forgets them only past a cutoff, and
only if they are still marked and still unreferenced (both backends)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from server.catalog import Catalog
from server.catalog.postgres import MIGRATIONS as PG_MIGRATIONS
from server.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from tests.catalog.old_schema import Execute, postgres_catalog_at, sqlite_catalog_at, version_before
from tests.catalog.records import blob


def raw_sql(catalog: Catalog, request: pytest.FixtureRequest, tmp_path: Path, sql: str) -> None:
    """A statement on the catalog's own database, behind its back (what a race leaves)."""
    if isinstance(catalog, SQLiteCatalog):
        db = sqlite3.connect(tmp_path / "catalog.sqlite3", isolation_level=None)
        db.execute(sql)
        db.close()
    else:
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            conn.execute(sql.encode())


@pytest.mark.gen_test
async def test_the_last_entry_purged_marks_its_blob(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    photo = blob("shared")
    await catalog.add_image(alice.id, photo, "a.jpg", 1.0)
    await catalog.add_image(bob.id, photo, "b.jpg", 1.0)
    await catalog.trash(alice.id, photo.sha256, 2.0)
    assert await catalog.purge(alice.id, photo.sha256, 50.0)
    assert await catalog.drop_unreferenced_blobs(1e12) == []  # bob still has it
    await catalog.trash(bob.id, photo.sha256, 3.0)
    assert await catalog.purge(bob.id, photo.sha256, 60.0)
    # Marked when its last entry went, not before: kept until the cutoff passes that.
    assert await catalog.drop_unreferenced_blobs(59.0) == []
    assert await catalog.get_blob(photo.sha256) is not None
    assert await catalog.drop_unreferenced_blobs(60.0) == [photo.sha256]
    assert await catalog.get_blob(photo.sha256) is None
    assert await catalog.drop_unreferenced_blobs(1e12) == []


@pytest.mark.gen_test
async def test_expired_trash_marks_the_blobs_it_frees(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    old, other, kept = blob("old"), blob("other"), blob("kept")
    for photo in (old, other, kept):
        await catalog.add_image(alice.id, photo, "a.jpg", 1.0)
    await catalog.trash(alice.id, old.sha256, 10.0)
    await catalog.trash(alice.id, other.sha256, 10.0)
    assert await catalog.expire_trash(20.0, 70.0) == 2
    assert await catalog.drop_unreferenced_blobs(69.0) == []
    assert await catalog.drop_unreferenced_blobs(70.0) == sorted([old.sha256, other.sha256])
    assert await catalog.known_blobs() == {kept.sha256}


@pytest.mark.gen_test
async def test_adding_the_bytes_again_clears_the_mark(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    photo = blob("again")
    await catalog.add_image(alice.id, photo, "a.jpg", 1.0)
    await catalog.trash(alice.id, photo.sha256, 2.0)
    await catalog.purge(alice.id, photo.sha256, 50.0)
    # Another person's ingest of the same bytes, before gc came by.
    await catalog.add_images(bob.id, [(photo, "b.jpg")], 55.0)
    assert await catalog.drop_unreferenced_blobs(1e12) == []
    assert await catalog.get_image(bob.id, photo.sha256) is not None
    # Unreferenced again later: the mark is the new one, not the first.
    await catalog.trash(bob.id, photo.sha256, 56.0)
    await catalog.purge(bob.id, photo.sha256, 80.0)
    assert await catalog.drop_unreferenced_blobs(79.0) == []
    assert await catalog.drop_unreferenced_blobs(80.0) == [photo.sha256]


@pytest.mark.gen_test
async def test_a_blob_with_an_entry_is_never_dropped_and_stragglers_are_marked(
    catalog: Catalog, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    alice = await catalog.ensure_user("alice")
    kept, loose = blob("kept"), blob("loose")
    await catalog.add_image(alice.id, kept, "k.jpg", 1.0)
    await catalog.add_image(alice.id, loose, "l.jpg", 1.0)
    await catalog.trash(alice.id, loose.sha256, 2.0)
    await catalog.purge(alice.id, loose.sha256, 3.0)
    # What two transactions racing may leave: a mark on a blob that has an entry, and
    # none on a blob that has lost its last one.
    raw_sql(catalog, request, tmp_path, "UPDATE blobs SET unreferenced_at = 1.0")
    raw_sql(
        catalog,
        request,
        tmp_path,
        f"UPDATE blobs SET unreferenced_at = NULL WHERE sha256 = '{loose.sha256}'",
    )
    assert await catalog.drop_unreferenced_blobs(1e12) == []  # the condition holds
    assert await catalog.mark_unreferenced_blobs(90.0) == 1
    assert await catalog.drop_unreferenced_blobs(89.0) == []
    assert await catalog.drop_unreferenced_blobs(1e12) == [loose.sha256]
    assert await catalog.known_blobs() == {kept.sha256}
    assert await catalog.mark_unreferenced_blobs(91.0) == 0
    assert await catalog.drop_unreferenced_blobs(1e12) == []


@pytest.mark.gen_test
async def test_drop_takes_at_most_limit_oldest_marks_first(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    photos = [blob(f"many-{n}") for n in range(5)]
    for n, photo in enumerate(photos):
        await catalog.add_image(alice.id, photo, "m.jpg", 1.0)
        await catalog.trash(alice.id, photo.sha256, 2.0)
        await catalog.purge(alice.id, photo.sha256, 10.0 + n)
    first = await catalog.drop_unreferenced_blobs(100.0, limit=2)
    assert first == sorted(p.sha256 for p in photos[:2])
    rest = await catalog.drop_unreferenced_blobs(100.0, limit=10)
    assert rest == sorted(p.sha256 for p in photos[2:])


# migrating: blobs already unreferenced are marked ------------------------------------


def insert_referenced_and_loose(execute: Execute, mark: str) -> None:
    """Two blobs as add_image wrote them before the mark: one in alice's library, one
    whose only entry was purged (so nothing refers to it)."""
    execute(f"INSERT INTO users (name, created_at) VALUES ({mark}, 0)", ("alice",))
    for name in ("referenced", "loose"):
        old = blob(name)
        execute(
            "INSERT INTO blobs (sha256, md5, size, format, mime, has_gps, decodable, created_at) "
            f"VALUES ({mark}, {mark}, {mark}, 'JPEG', 'image/jpeg', false, true, 0)",
            (old.sha256, old.md5, old.size),
        )
    old = blob("referenced")
    execute(
        "INSERT INTO entries (user_id, sha256, md5, filename, uploaded_at, taken_ts) "
        f"SELECT id, {mark}, {mark}, 'r.jpg', 1, 1 FROM users WHERE name = {mark}",
        (old.sha256, old.md5, "alice"),
    )


async def assert_marked(migrated: Catalog, before: float) -> None:
    assert await migrated.drop_unreferenced_blobs(before - 60) == []  # marked now
    assert await migrated.drop_unreferenced_blobs(time.time() + 60) == [blob("loose").sha256]


@pytest.mark.gen_test
async def test_sqlite_migration_marks_blobs_nothing_refers_to(tmp_path: Path) -> None:
    version = version_before(MIGRATIONS, "ADD COLUMN unreferenced_at")
    before = time.time()
    path = tmp_path / "catalog.sqlite3"
    async with sqlite_catalog_at(path, version, insert_referenced_and_loose) as migrated:
        await assert_marked(migrated, before)


@pytest.mark.gen_test
async def test_postgres_migration_marks_blobs_nothing_refers_to() -> None:
    version = version_before(PG_MIGRATIONS, "ADD COLUMN unreferenced_at")
    before = time.time()
    async with postgres_catalog_at(version, insert_referenced_and_loose) as migrated:
        assert migrated.migrations_applied == len(PG_MIGRATIONS) - version
        await assert_marked(migrated, before)
