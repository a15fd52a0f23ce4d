"""SQLiteCatalog on a real database file: schema, library semantics, auth records."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.catalog import (
    BlobRecord,
    Catalog,
    CatalogFull,
    CatalogTooNew,
    Position,
    UploadRecord,
    sort_time,
)
from server.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from server.storage import StorageFull

# What these tests look at is SQLite's own file (a side connection, PRAGMAs).
sqlite_only = pytest.mark.parametrize("catalog", ["sqlite"], indirect=True)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite3"


def blob(n: int | str, taken_at: str | None = None) -> BlobRecord:
    seed = str(n).encode()
    return BlobRecord(
        sha256=hashlib.sha256(seed).hexdigest(),
        md5=hashlib.md5(seed).hexdigest(),
        size=len(seed),
        format="JPEG",
        mime="image/jpeg",
        width=4,
        height=3,
        orientation=None,
        taken_at=taken_at,
        camera_make=None,
        camera_model=None,
        has_gps=False,
        decodable=True,
        thumbnail=None,
    )


def side_connection(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=10)


# schema -------------------------------------------------------------------------


def test_an_older_catalog_is_rebuilt_once_to_reclaim_space(path: Path) -> None:
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode = WAL")
    old.execute("CREATE TABLE filler (x BLOB)")
    old.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 4000,) for _ in range(200)])
    old.commit()
    old.execute("DELETE FROM filler")
    old.commit()
    assert old.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    assert old.execute("PRAGMA freelist_count").fetchone()[0] > 100
    old.close()
    SQLiteCatalog(path).close_now()
    db = side_connection(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM filler").fetchone()[0] == 0  # nothing lost
    db.close()


def test_migrations_set_user_version_and_reopening_is_idempotent(path: Path) -> None:
    first = SQLiteCatalog(path)
    assert first.schema_version == len(MIGRATIONS)
    first.close_now()
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "tokens", "pairing_codes", "blobs", "entries", "uploads"} <= tables
    db.execute("INSERT INTO users (name, created_at) VALUES ('kept', 0)")
    db.close()

    SQLiteCatalog(path).close_now()  # migrating again must neither fail nor reset anything
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT name FROM users").fetchall() == [("kept",)]
    db.close()


def test_a_newer_catalog_is_refused(path: Path) -> None:
    SQLiteCatalog(path).close_now()
    db = side_connection(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(CatalogTooNew, match=r"newer than this server knows.*upgrade"):
        SQLiteCatalog(path)
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
    db.close()


def test_a_migration_done_meanwhile_by_another_process_is_not_redone(path: Path) -> None:
    """Two processes (`serve` and `token`) may open a fresh data folder at once."""
    other = side_connection(path)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(max_workers=1) as pool:
        opening = pool.submit(SQLiteCatalog, path)
        time.sleep(0.3)  # let it wait on the lock the other process holds
        for statement in MIGRATIONS[0].split(";"):
            if statement.strip():
                other.execute(statement)
        other.execute("PRAGMA user_version = 1")
        other.execute("COMMIT")
        other.close()
        opened = opening.result(timeout=10)
    opened.close_now()
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


@sqlite_only
def test_wal_mode_is_on(catalog: SQLiteCatalog, path: Path) -> None:
    db = side_connection(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


# people and tokens --------------------------------------------------------------


@pytest.mark.gen_test
async def test_ensure_user_is_idempotent(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    assert alice.name == "alice" and bob.name == "bob"
    assert alice.id != bob.id
    assert await catalog.ensure_user("alice") == alice


@pytest.mark.gen_test
async def test_tokens_resolve_to_their_user_and_device(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    device = await catalog.add_token(alice.id, "h" * 64, "phone")
    assert device.user_id == alice.id and device.name == "phone"
    found = await catalog.user_for_token("h" * 64)
    assert found is not None
    user, seen = found
    assert user == alice
    assert seen.id == device.id and seen.name == "phone"
    assert seen.last_seen_at is not None
    assert await catalog.user_for_token("x" * 64) is None


@pytest.mark.gen_test
@sqlite_only
async def test_a_revoked_token_is_refused(catalog: SQLiteCatalog, path: Path) -> None:
    # No revoke call exists yet; the schema's revoked_at is what one would set.
    alice = await catalog.ensure_user("alice")
    await catalog.add_token(alice.id, "r" * 64, "lost phone")
    await catalog.add_token(alice.id, "k" * 64, "kept phone")
    db = side_connection(path)
    db.execute("UPDATE tokens SET revoked_at = ? WHERE token_hash = ?", (time.time(), "r" * 64))
    db.close()
    assert await catalog.user_for_token("r" * 64) is None
    assert await catalog.user_for_token("k" * 64) is not None


@pytest.mark.gen_test
async def test_pairing_codes_are_one_time(catalog: Catalog) -> None:
    carol = await catalog.ensure_user("carol")
    now = time.time()
    assert await catalog.add_pairing_code("c1", carol.id, now + 600) is True
    assert await catalog.add_pairing_code("c1", carol.id, now + 600) is False
    assert await catalog.redeem_pairing_code("c2", now) is None
    assert await catalog.redeem_pairing_code("c1", now) == carol
    assert await catalog.redeem_pairing_code("c1", now) is None
    # A used code's hash may be handed out again later.
    assert await catalog.add_pairing_code("c1", carol.id, now + 600) is True
    assert await catalog.redeem_pairing_code("c1", now + 1) == carol


@pytest.mark.gen_test
async def test_pairing_codes_expire(catalog: Catalog) -> None:
    carol = await catalog.ensure_user("carol")
    now = time.time()
    assert await catalog.add_pairing_code("soon", carol.id, now + 60)
    assert await catalog.redeem_pairing_code("soon", now + 61) is None
    assert await catalog.redeem_pairing_code("soon", now + 59) == carol
    assert await catalog.add_pairing_code("past", carol.id, now - 1)
    assert await catalog.redeem_pairing_code("past", now) is None


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


def upload(upload_id: str, user_id: int, expires_at: float = 100.0) -> UploadRecord:
    return UploadRecord(
        id=upload_id,
        user_id=user_id,
        length=1000,
        offset=0,
        metadata={"filename": "5rW36L65LmpwZw==", "flag": ""},
        created_at=1.0,
        expires_at=expires_at,
    )


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
