"""The catalog's library: duplicates, trash, pages, and what survives reopening."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from server.catalog import Catalog, Position, sort_time
from server.catalog.sqlite import SQLiteCatalog
from tests.catalog.records import blob, path

__all__ = ["path"]  # a fixture, used by name

# the library --------------------------------------------------------------------


@pytest.mark.gen_test
async def test_add_image_dedup_semantics(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    photo = blob(1)
    image, duplicate = await catalog.add_image(alice.id, photo, "a.jpg", 1000.0)
    assert duplicate is False
    assert image.blob == photo and image.filename == "a.jpg" and image.deleted_at is None
    assert image.taken_ts == 1000.0  # no taken_at: ordered by upload time

    again, duplicate = await catalog.add_image(alice.id, photo, "copy.jpg", 2000.0)
    assert duplicate is True
    assert again.filename == "a.jpg"
    assert len(await catalog.list_images(alice.id, 10, None)) == 1

    _, duplicate = await catalog.add_image(bob.id, photo, "b.jpg", 3000.0)
    assert duplicate is False  # bob did not have it, even though the blob is stored
    assert await catalog.known_blobs() == {photo.sha256}

    trashed = await catalog.trash(alice.id, photo.sha256, 4000.0)
    assert trashed is not None and trashed.deleted_ts == 4000.0
    assert await catalog.get_image(alice.id, photo.sha256) is None
    back, duplicate = await catalog.add_image(alice.id, photo, "a.jpg", 5000.0)
    assert duplicate is False
    assert back.deleted_at is None
    assert await catalog.get_image(alice.id, photo.sha256, trashed=True) is None
    assert [r.sha256 for r in await catalog.list_images(alice.id, 10, None)] == [photo.sha256]


@pytest.mark.gen_test
async def test_trash_restore_purge(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    photo = blob(2)
    await catalog.add_image(alice.id, photo, "a.jpg", 10.0)
    assert await catalog.trash(bob.id, photo.sha256, 11.0) is None
    # Trash and restore are idempotent: each answers where the entry now is.
    kept = await catalog.restore(alice.id, photo.sha256)
    assert kept is not None and kept.deleted_at is None
    assert await catalog.purge(alice.id, photo.sha256, 50.0) is False  # not in the trash
    assert await catalog.trash(alice.id, photo.sha256, 12.0) is not None
    again = await catalog.trash(alice.id, photo.sha256, 99.0)
    assert again is not None and again.deleted_ts == 12.0
    assert await catalog.restore(bob.id, photo.sha256) is None
    assert await catalog.purge(bob.id, photo.sha256, 50.0) is False
    restored = await catalog.restore(alice.id, photo.sha256)
    assert restored is not None and restored.deleted_at is None
    await catalog.trash(alice.id, photo.sha256, 13.0)
    assert await catalog.purge(alice.id, photo.sha256, 50.0) is True
    assert await catalog.get_image(alice.id, photo.sha256, trashed=True) is None
    assert await catalog.is_referenced(photo.sha256) is False


@pytest.mark.gen_test
async def test_find_by_md5_sees_own_library_only(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    photo = blob(3)
    await catalog.add_image(alice.id, photo, "a.jpg", 10.0)
    found = await catalog.find_by_md5(alice.id, photo.md5)
    assert found is not None and found.sha256 == photo.sha256
    assert await catalog.find_by_md5(bob.id, photo.md5) is None
    await catalog.trash(alice.id, photo.sha256, 11.0)
    assert await catalog.find_by_md5(alice.id, photo.md5) is None


async def walk(catalog: Catalog, user_id: int, limit: int, *, trashed: bool = False) -> list[str]:
    seen: list[str] = []
    after: Position | None = None
    while True:
        page = await catalog.list_images(user_id, limit, after, trashed=trashed)
        seen += [r.sha256 for r in page]
        if len(page) < limit:
            return seen
        last = page[-1]
        key = last.deleted_ts if trashed else last.taken_ts
        assert key is not None
        after = (key, last.sha256)


@pytest.mark.gen_test
async def test_keyset_pagination_with_equal_times(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    taken = ["2021-05-01T10:00:00", "2021-05-01T10:00:00+08:00", None, "2019-01-01T00:00:00Z"]
    expected: list[tuple[float, str]] = []
    for n in range(230):
        photo = blob(n, taken[n % len(taken)])
        # Everything without taken_at is uploaded at the same instant: many ties.
        record, _ = await catalog.add_image(alice.id, photo, f"{n}.jpg", 1_600_000_000.0)
        expected.append((record.taken_ts, photo.sha256))
    await catalog.add_image(bob.id, blob("bob's"), "b.jpg", 1_600_000_000.0)
    assert len({ts for ts, _ in expected}) == 4

    want = [sha for _, sha in sorted(expected, reverse=True)]
    assert await walk(catalog, alice.id, 500) == want
    for limit in (1, 7, 57, 230):
        assert await walk(catalog, alice.id, limit) == want

    for sha in want[::3]:
        await catalog.trash(alice.id, sha, 1_700_000_000.0)
    trash_want = sorted(want[::3], reverse=True)
    assert await walk(catalog, alice.id, 9, trashed=True) == trash_want
    assert await walk(catalog, alice.id, 9) == [s for s in want if s not in set(trash_want)]


def test_sort_time_reads_offsets_and_treats_naive_as_utc() -> None:
    assert sort_time("2021-05-01T10:00:00", 0.0) == 1619863200.0
    assert sort_time("2021-05-01T10:00:00Z", 0.0) == 1619863200.0
    assert sort_time("2021-05-01T18:00:00+08:00", 0.0) == 1619863200.0
    assert sort_time(None, 42.0) == 42.0
    assert sort_time("not a date", 42.0) == 42.0


@pytest.mark.gen_test
async def test_present_sees_own_untrashed_entries_in_large_batches(
    catalog: Catalog,
) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    mine = [blob(f"mine{n}") for n in range(6)]
    for photo in mine:
        await catalog.add_image(alice.id, photo, "m.jpg", 1.0)
    await catalog.trash(alice.id, mine[5].sha256, 2.0)
    bobs = blob("bob")
    await catalog.add_image(bob.id, bobs, "b.jpg", 1.0)

    filler = [hashlib.sha256(f"absent{n}".encode()).hexdigest() for n in range(1200)]
    asked = [*filler[:3], mine[0].sha256, *filler[3:700], mine[1].sha256, bobs.sha256]
    asked += [mine[5].sha256, *filler[700:], mine[2].sha256, mine[3].sha256]
    assert len(asked) > 1000
    want = {p.sha256 for p in mine[:4]}
    assert await catalog.present(alice.id, "sha256", asked) == want
    assert await catalog.present(alice.id, "sha256", iter(asked)) == want
    assert await catalog.present(bob.id, "sha256", asked) == {bobs.sha256}
    md5s = [hashlib.md5(f"x{n}".encode()).hexdigest() for n in range(600)]
    asked_md5 = [*md5s[:550], mine[4].md5, *md5s[550:], bobs.md5, mine[5].md5]
    assert await catalog.present(alice.id, "md5", asked_md5) == {mine[4].md5}
    assert await catalog.present(alice.id, "sha256", []) == set()


@pytest.mark.gen_test
async def test_drop_unreferenced_blobs(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    shared, trashed, purged = blob("shared"), blob("trashed"), blob("purged")
    for photo in (shared, trashed, purged):
        await catalog.add_image(alice.id, photo, "a.jpg", 1.0)
    await catalog.add_image(bob.id, shared, "b.jpg", 1.0)
    await catalog.trash(alice.id, shared.sha256, 2.0)
    await catalog.purge(alice.id, shared.sha256, 50.0)  # bob still has it
    await catalog.trash(alice.id, trashed.sha256, 2.0)  # the trash still refers to it
    await catalog.trash(alice.id, purged.sha256, 2.0)
    await catalog.purge(alice.id, purged.sha256, 50.0)  # marked at 50

    assert await catalog.drop_unreferenced_blobs(49.0) == []  # within its grace
    assert await catalog.drop_unreferenced_blobs(50.0) == [purged.sha256]
    assert await catalog.known_blobs() == {shared.sha256, trashed.sha256}
    assert await catalog.drop_unreferenced_blobs(1e12) == []
    assert await catalog.is_referenced(shared.sha256)
    assert await catalog.is_referenced(trashed.sha256)


@pytest.mark.gen_test
async def test_expire_trash_only_removes_old_trash(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    old, recent, kept = blob("old"), blob("recent"), blob("kept")
    for photo in (old, recent, kept):
        await catalog.add_image(alice.id, photo, "a.jpg", 1.0)
    await catalog.trash(alice.id, old.sha256, 100.0)
    await catalog.trash(alice.id, recent.sha256, 300.0)
    assert await catalog.expire_trash(200.0, 400.0) == 1
    assert await catalog.get_image(alice.id, old.sha256, trashed=True) is None
    assert await catalog.get_image(alice.id, recent.sha256, trashed=True) is not None
    assert await catalog.get_image(alice.id, kept.sha256) is not None


@pytest.mark.gen_test
async def test_set_thumbnail_and_data_survive_reopening(path: Path) -> None:
    first = SQLiteCatalog(path)
    alice = await first.ensure_user("alice")
    photo = blob("t")
    await first.add_image(alice.id, photo, "t.jpg", 5.0)
    await first.set_thumbnail(photo.sha256, False)
    await first.close()
    second = SQLiteCatalog(path)
    try:
        record = await second.get_image(alice.id, photo.sha256)
        assert record is not None
        assert record.blob.thumbnail is False
        assert record.filename == "t.jpg"
    finally:
        await second.close()
