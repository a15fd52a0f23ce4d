"""A check (and a find) by md5 answers from the entries' own md5, on both backends,
and a catalog made before entries carried it learns it from its blobs when migrated."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from server.catalog import Catalog
from server.catalog import postgres as pg
from server.catalog import sqlite as lite
from tests.catalog.old_schema import Execute, postgres_catalog_at, sqlite_catalog_at, version_before
from tests.catalog.records import blob


@pytest.mark.gen_test
async def test_md5_check_follows_trash_purge_damage_and_owner(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    kept, trashed, purged, damaged, bobs = (blob(f"md5-{n}") for n in range(5))
    for photo in (kept, trashed, purged, damaged):
        await catalog.add_image(alice.id, photo, "a.jpg", 1.0)
    await catalog.add_image(bob.id, bobs, "b.jpg", 1.0)
    await catalog.add_image(bob.id, kept, "b.jpg", 1.0)
    await catalog.trash(alice.id, trashed.sha256, 2.0)
    await catalog.trash(alice.id, purged.sha256, 2.0)
    assert await catalog.purge(alice.id, purged.sha256, 3.0)
    await catalog.mark_damaged(damaged.sha256, "missing", 3.0)
    asked = [p.md5 for p in (kept, trashed, purged, damaged, bobs)]
    asked.append(hashlib.md5(b"nobody's").hexdigest())

    assert await catalog.present(alice.id, "md5", asked) == {kept.md5}
    assert await catalog.present(bob.id, "md5", asked) == {kept.md5, bobs.md5}
    assert await catalog.find_by_md5(alice.id, trashed.md5) is None
    assert await catalog.find_by_md5(alice.id, purged.md5) is None
    assert await catalog.find_by_md5(alice.id, bobs.md5) is None

    # Back from the trash, sent again after the purge, mended: each counts again.
    await catalog.restore(alice.id, trashed.sha256)
    await catalog.add_image(alice.id, purged, "again.jpg", 4.0)
    await catalog.clear_damage(damaged.sha256)
    want = {p.md5 for p in (kept, trashed, purged, damaged)}
    assert await catalog.present(alice.id, "md5", asked) == want
    found = await catalog.find_by_md5(alice.id, purged.md5)
    assert found is not None and found.sha256 == purged.sha256 and found.filename == "again.jpg"
    # Alice's trash is hers alone: Bob's entry of the same blob stays.
    await catalog.trash(alice.id, kept.sha256, 5.0)
    assert kept.md5 not in await catalog.present(alice.id, "md5", asked)
    assert kept.md5 in await catalog.present(bob.id, "md5", asked)


OLD_ROWS = [
    # (user, blob n, trashed)
    ("alice", 1, False),
    ("alice", 2, True),
    ("bob", 1, False),
    ("bob", 3, False),
]


async def assert_learned(catalog: Catalog) -> None:
    alice, bob = await catalog.ensure_user("alice"), await catalog.ensure_user("bob")
    asked = [blob(n).md5 for n in (1, 2, 3)]
    assert await catalog.present(alice.id, "md5", asked) == {blob(1).md5}
    assert await catalog.present(bob.id, "md5", asked) == {blob(1).md5, blob(3).md5}
    found = await catalog.find_by_md5(bob.id, blob(3).md5)
    assert found is not None and found.sha256 == blob(3).sha256
    await catalog.restore(alice.id, blob(2).sha256)
    assert await catalog.present(alice.id, "md5", asked) == {blob(1).md5, blob(2).md5}


def insert_old_rows(execute: Execute, mark: str) -> None:
    """The rows `add_image` wrote before entries carried md5 (blobs and entries only)."""
    for name in ("alice", "bob"):
        execute(f"INSERT INTO users (name, created_at) VALUES ({mark}, 0)", (name,))
    for n in (1, 2, 3):
        old = blob(n)
        execute(
            "INSERT INTO blobs (sha256, md5, size, format, mime, has_gps, decodable, created_at) "
            f"VALUES ({mark}, {mark}, {mark}, 'JPEG', 'image/jpeg', false, true, 0)",
            (old.sha256, old.md5, old.size),
        )
    for name, n, trashed in OLD_ROWS:
        execute(
            "INSERT INTO entries (user_id, sha256, filename, uploaded_at, taken_ts, deleted_at) "
            f"SELECT id, {mark}, 'p.jpg', 1, 1, {mark} FROM users WHERE name = {mark}",
            (blob(n).sha256, 2.0 if trashed else None, name),
        )


@pytest.mark.gen_test
async def test_an_sqlite_catalog_before_entries_carried_md5_learns_it(tmp_path: Path) -> None:
    version = version_before(lite.MIGRATIONS, "entries_md5")
    async with sqlite_catalog_at(tmp_path / "catalog.sqlite3", version, insert_old_rows) as catalog:
        await assert_learned(catalog)


@pytest.mark.gen_test
async def test_a_postgres_catalog_before_entries_carried_md5_learns_it() -> None:
    version = version_before(pg.MIGRATIONS, "entries_md5")
    async with postgres_catalog_at(version, insert_old_rows) as catalog:
        await assert_learned(catalog)
