"""The timeline's queries are index searches, never scans, whatever SQLite knows of the data."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from server.catalog.sqlite import SQLiteCatalog
from server.catalog.sqlite.timeline import PLANNED
from tests.catalog.records import blob

# Each step of each plan: the index searched and the keys it seeks by. A page walks
# its partial index in timeline order from the cursor (the index holds the entries'
# every column, so no entry row is read), so its LIMIT bounds the work;
# everything else seeks unique keys. A step that only narrows by user_id (a walk of
# the whole library) would match none of these.
BY_BLOB = "SEARCH b USING INDEX sqlite_autoindex_blobs_1 (sha256=?)"
BY_ENTRY = "SEARCH e USING INDEX sqlite_autoindex_entries_1 (user_id=? AND sha256=?)"
# A check reads no row: one covering search of a large index a hash, then small
# partial indexes (the trash, the damaged; the md5 index holds no trashed entry).
BY_MD5 = "SEARCH e USING COVERING INDEX entries_md5 (user_id=? AND md5=?)"
UNDAMAGED = "SEARCH d USING INDEX blobs_damaged (sha256=?)"
KEPT = [
    "CORRELATED SCALAR SUBQUERY 1",
    "SEARCH t USING INDEX entries_trashed (user_id=? AND sha256=?)",
    "CORRELATED SCALAR SUBQUERY 2",
    UNDAMAGED,
]
# A Live Photo's other half, for an entry whose blob has an identifier: a search of the
# identifiers' partial index (covering), then of the library's key for each one found.
LIVE = [
    "CORRELATED SCALAR SUBQUERY 2",
    "SEARCH p USING COVERING INDEX blobs_live (live_id=?)",
    "CORRELATED SCALAR SUBQUERY 1",
    "SEARCH pe USING INDEX sqlite_autoindex_entries_1 (user_id=? AND sha256=?)",
]
EXPECTED = {
    "first page": ["SEARCH e USING COVERING INDEX entries_library (user_id=?)", BY_BLOB, *LIVE],
    "a page by cursor": [
        "SEARCH e USING COVERING INDEX entries_library (user_id=? AND (taken_ts,sha256)<(?,?))",
        BY_BLOB,
        *LIVE,
    ],
    "trash page by cursor": [
        "SEARCH e USING INDEX entries_trash (user_id=? AND deleted_at>? AND "
        "(deleted_at,sha256)<(?,?))",
        BY_BLOB,
        *LIVE,
    ],
    "one photo": [BY_ENTRY, BY_BLOB, *LIVE],
    "check sha256": [BY_ENTRY.replace("USING INDEX", "USING COVERING INDEX"), *KEPT],
    "check md5": [BY_MD5, "CORRELATED SCALAR SUBQUERY 1", UNDAMAGED],
    # Sorting what one md5 found (a row or two) is no scan.
    "find by md5": [
        "SEARCH e USING INDEX entries_md5 (user_id=? AND md5=?)",
        BY_BLOB,
        *LIVE,
        "USE TEMP B-TREE FOR ORDER BY",
    ],
    # The months: a seek of the newest photo, then of the newest before each month
    # found (the months are few, the rows of the CTE), and a count of each month's own
    # range of the library index, covering. "SCAN months" walks the CTE's rows (one a
    # month), not a table; nothing is sorted.
    "months": [
        "CO-ROUTINE months",
        "SETUP",
        "SCAN CONSTANT ROW",
        "SCALAR SUBQUERY 1",
        "SEARCH entries USING COVERING INDEX entries_library (user_id=?)",
        "RECURSIVE STEP",
        "SCAN months",
        "CORRELATED SCALAR SUBQUERY 3",
        "SEARCH entries USING COVERING INDEX entries_library (user_id=? AND taken_ts<?)",
        "SCAN months",
        "CORRELATED SCALAR SUBQUERY 5",
        "SEARCH entries USING COVERING INDEX entries_library "
        "(user_id=? AND taken_ts>? AND taken_ts<?)",
    ],
}


def assert_searches_only(plans: dict[str, list[str]]) -> None:
    assert set(plans) == set(PLANNED) == set(EXPECTED)
    for name, steps in plans.items():
        assert steps == EXPECTED[name], name


@pytest.mark.gen_test
async def test_the_plans_stay_searches_once_sqlite_has_statistics(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    catalog = SQLiteCatalog(path)
    try:
        assert_searches_only(await catalog.query_plans())
        alice = await catalog.ensure_user("alice")
        bob = await catalog.ensure_user("bob")
        for n in range(300):
            owner = alice if n % 3 else bob
            await catalog.add_image(
                owner.id, blob(n, f"2020-01-{n % 28 + 1:02d}T10:00:00"), "p.jpg", n
            )
        for n in range(0, 300, 7):
            await catalog.trash(alice.id, blob(n).sha256, 1000.0 + n)
    finally:
        await catalog.close()
    side = sqlite3.connect(path)
    side.execute("ANALYZE")  # what `PRAGMA optimize` would leave behind
    side.close()
    catalog = SQLiteCatalog(path)
    try:
        assert_searches_only(await catalog.query_plans())
        # The md5 paths, from the entries' md5 index, still answer for the user only.
        mine = blob(1)
        assert (await catalog.find_by_md5(alice.id, mine.md5)) is not None
        assert await catalog.find_by_md5(bob.id, mine.md5) is None
        asked = [mine.md5, blob(3).md5, hashlib.md5(b"nobody").hexdigest()]
        assert await catalog.present(alice.id, "md5", asked) == {mine.md5}
        assert await catalog.present(bob.id, "md5", asked) == {blob(3).md5}
    finally:
        await catalog.close()


@pytest.mark.gen_test
async def test_a_check_leaves_out_the_trashed_and_the_damaged_until_they_come_back(
    tmp_path: Path,
) -> None:
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    try:
        alice = await catalog.ensure_user("alice")
        bob = await catalog.ensure_user("bob")
        photos = [blob(f"check-{n}") for n in range(4)]
        for photo in photos:
            await catalog.add_image(alice.id, photo, "p.jpg", 1.0)
        await catalog.add_image(bob.id, photos[0], "p.jpg", 1.0)
        await catalog.trash(alice.id, photos[1].sha256, 2.0)
        await catalog.mark_damaged(photos[2].sha256, "missing", 3.0)
        for field in ("sha256", "md5"):
            asked = [getattr(p, field) for p in photos]
            present = await catalog.present(alice.id, field, asked)
            assert present == {asked[0], asked[3]}, field
            # Bob's entry of the same blob is his; Alice's trash is not his.
            assert await catalog.present(bob.id, field, asked) == {asked[0]}, field
        await catalog.restore(alice.id, photos[1].sha256)
        await catalog.clear_damage(photos[2].sha256)
        assert await catalog.present(alice.id, "sha256", [p.sha256 for p in photos]) == {
            p.sha256 for p in photos
        }
        await catalog.mark_damaged(photos[0].sha256, "mismatch", 4.0)  # damage is the blob's
        assert await catalog.present(bob.id, "md5", [photos[0].md5]) == set()
    finally:
        await catalog.close()
