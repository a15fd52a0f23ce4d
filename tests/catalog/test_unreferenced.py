"""Blobs with no entry are marked, not forgotten; gc forgets them only past a cutoff, and
only if they are still marked and still unreferenced (both backends)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server.catalog import Catalog
from server.catalog.postgres import MIGRATIONS as PG_MIGRATIONS
from server.catalog.postgres import PostgresCatalog
from server.catalog.sqlite import SQLiteCatalog
from tests import postgres_server
from tests.catalog.test_sqlite import blob

# The migrations that brought in the unreferenced mark.
SQLITE_MARK = 11
POSTGRES_MARK = 5


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


@pytest.mark.gen_test
async def test_sqlite_migration_marks_blobs_nothing_refers_to(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    referenced, loose = blob("referenced"), blob("loose")
    catalog = SQLiteCatalog(path)
    alice = await catalog.ensure_user("alice")
    await catalog.add_image(alice.id, referenced, "r.jpg", 1.0)
    await catalog.add_image(alice.id, loose, "l.jpg", 1.0)
    await catalog.trash(alice.id, loose.sha256, 2.0)
    await catalog.purge(alice.id, loose.sha256, 3.0)
    catalog.close_now()
    # Back to the schema before the mark (migration 11): the column and its index gone,
    # and what later migrations added.
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP INDEX blobs_unreferenced")
    db.execute("ALTER TABLE blobs DROP COLUMN unreferenced_at")
    db.execute("DROP TABLE server_keys")  # 12
    db.execute(f"PRAGMA user_version = {SQLITE_MARK - 1}")
    db.close()
    before = time.time()
    migrated = SQLiteCatalog(path)
    try:
        assert await migrated.drop_unreferenced_blobs(before - 60) == []  # marked now
        assert await migrated.drop_unreferenced_blobs(time.time() + 60) == [loose.sha256]
    finally:
        migrated.close_now()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    if postgres_server.problem() is not None:
        pytest.skip(str(postgres_server.problem()))
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.mark.gen_test
async def test_postgres_migration_marks_blobs_nothing_refers_to(fresh_database: str) -> None:
    referenced, loose = blob("referenced"), blob("loose")
    catalog = PostgresCatalog(fresh_database)
    await catalog.start()
    alice = await catalog.ensure_user("alice")
    await catalog.add_image(alice.id, referenced, "r.jpg", 1.0)
    await catalog.add_image(alice.id, loose, "l.jpg", 1.0)
    await catalog.trash(alice.id, loose.sha256, 2.0)
    await catalog.purge(alice.id, loose.sha256, 3.0)
    await catalog.close()
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("DROP INDEX blobs_unreferenced")
        conn.execute("ALTER TABLE blobs DROP COLUMN unreferenced_at")
        conn.execute("DROP TABLE server_keys")  # 6
        conn.execute("DELETE FROM schema_migrations WHERE version >= %s", (POSTGRES_MARK,))
    before = time.time()
    migrated = PostgresCatalog(fresh_database)
    await migrated.start()
    assert migrated.migrations_applied == len(PG_MIGRATIONS) - POSTGRES_MARK + 1
    assert await migrated.drop_unreferenced_blobs(before - 60) == []
    assert await migrated.drop_unreferenced_blobs(time.time() + 60) == [loose.sha256]
    await migrated.close()
