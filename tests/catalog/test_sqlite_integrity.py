"""The catalog's integrity: damage marks, owners, walking the blobs, a full disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.catalog import Catalog, CatalogFull
from server.catalog.sqlite import SQLiteCatalog
from server.storage import StorageFull
from tests.catalog.records import blob, path, side_connection, sqlite_only

__all__ = ["path"]  # a fixture, used by name

# integrity: damage marks, owners, walking the blobs, a full disk ------------------


@pytest.mark.gen_test
@sqlite_only
async def test_damage_is_marked_shown_and_mended_by_adding_the_blob_again(
    catalog: SQLiteCatalog, path: Path
) -> None:
    alice = await catalog.ensure_user("alice")
    photo = blob("damaged")
    await catalog.add_image(alice.id, photo, "a.jpg", 1.0)
    assert not (await catalog.get_blob(photo.sha256) or photo).damaged

    assert await catalog.mark_damaged(photo.sha256, "missing", 100.0)
    assert await catalog.mark_damaged(photo.sha256, "missing", 200.0)  # found again
    db = side_connection(path)
    row = db.execute("SELECT damage, damaged_at FROM blobs WHERE sha256 = ?", (photo.sha256,))
    assert row.fetchone() == ("missing", 100.0), "first found is when it was damaged"
    assert await catalog.mark_damaged(photo.sha256, "mismatch", 300.0)
    row = db.execute("SELECT damage, damaged_at FROM blobs WHERE sha256 = ?", (photo.sha256,))
    assert row.fetchone() == ("mismatch", 300.0)
    assert not await catalog.mark_damaged(blob("unknown").sha256, "missing", 1.0)

    image = await catalog.get_image(alice.id, photo.sha256)
    assert image is not None and image.blob.damage == "mismatch"
    (listed,) = await catalog.list_images(alice.id, 10, None)
    assert listed.blob.damaged
    found = await catalog.get_blob(photo.sha256)
    assert found is not None and found.damage == "mismatch"

    # The same bytes placed again (by anyone) mend the file, so the mark goes.
    bob = await catalog.ensure_user("bob")
    await catalog.add_image(bob.id, photo, "b.jpg", 2.0)
    row = db.execute("SELECT damage, damaged_at FROM blobs WHERE sha256 = ?", (photo.sha256,))
    assert row.fetchone() == (None, None)
    assert await catalog.mark_damaged(photo.sha256, "missing", 400.0)
    assert await catalog.clear_damage(photo.sha256)
    assert not await catalog.clear_damage(photo.sha256)
    db.close()


@pytest.mark.gen_test
async def test_owners_and_walking_the_blobs_in_pages(catalog: Catalog) -> None:
    alice, bob = await catalog.ensure_user("alice"), await catalog.ensure_user("bob")
    shared, alone = blob("shared"), blob("alone")
    await catalog.add_image(bob.id, shared, "beach.jpg", 1.0)
    await catalog.add_image(alice.id, shared, "IMG_1.jpg", 1.0)
    await catalog.trash(bob.id, shared.sha256, 2.0)
    await catalog.add_image(alice.id, alone, "x.jpg", 1.0)
    assert [(o.user, o.filename, o.trashed) for o in await catalog.owners(shared.sha256)] == [
        ("alice", "IMG_1.jpg", False),
        ("bob", "beach.jpg", True),
    ]
    assert await catalog.owners(blob("nobody's").sha256) == []

    for n in range(7):
        await catalog.add_image(alice.id, blob(n), f"{n}.jpg", 1.0)
    walked, last = [], ""
    while page := await catalog.blobs_after(last, 3):
        assert len(page) <= 3
        walked += [record.sha256 for record in page]
        last = page[-1].sha256
    assert walked == sorted(await catalog.known_blobs())
    assert len(walked) == 9
    size = sum(blob(n).size for n in range(7)) + shared.size + alone.size
    assert await catalog.blob_totals() == (9, size)


@pytest.mark.gen_test
@sqlite_only
async def test_a_full_disk_is_catalog_full_and_the_catalog_goes_on(
    catalog: SQLiteCatalog,
) -> None:
    alice = await catalog.ensure_user("alice")

    def fill_up() -> None:
        catalog._db.execute("CREATE TABLE IF NOT EXISTS ballast (b BLOB)")
        pages = catalog._db.execute("PRAGMA page_count").fetchone()[0]
        catalog._db.execute(f"PRAGMA max_page_count = {pages}")
        try:
            catalog._add_image(alice.id, blob("lost"), "lost.jpg", 1.0)
            catalog._db.execute("INSERT INTO ballast VALUES (zeroblob(1000000))")
        finally:
            catalog._db.execute("PRAGMA max_page_count = 1073741823")

    # SQLite fails the statement with SQLITE_FULL and rolls the transaction back itself.
    with pytest.raises(CatalogFull) as raised:
        await catalog._write(fill_up)
    assert "database or disk is full" in str(raised.value)
    assert isinstance(raised.value, StorageFull)
    assert await catalog.get_image(alice.id, blob("lost").sha256) is None
    kept, _ = await catalog.add_image(alice.id, blob("kept"), "kept.jpg", 2.0)
    assert kept.filename == "kept.jpg"
