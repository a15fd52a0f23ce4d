"""The SQL of what a gallery asks most, and how SQLite plans it.

A page of the timeline (first, next or deep, by cursor), one photo, and a check of up
to a thousand hashes must each cost the same in a library of a thousand photos and of
a million: every one is a search of an index, bounded by its LIMIT or by the keys it
is given, never a scan. `plans()` shows SQLite's plan for each (`scripts/bench` prints
them, docs/performance.md explains them, and a test keeps them scan-free).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..fields import IMAGE_COLUMNS
from ..records import HashField

__all__ = ["IMAGE_COLUMNS", "IMAGE_FROM", "MONTHS_SQL", "PLANNED", "plans"]

# CROSS JOIN is SQLite's way to fix the order of a join, so that a plan does not
# change with what ANALYZE finds. Most lookups go from the user's entries (their
# indexes hold the timeline's order and the user's hashes) to each one's blob.
IMAGE_FROM = "FROM entries e CROSS JOIN blobs b ON b.sha256 = e.sha256"


def get_sql(trashed: bool) -> str:
    state = "IS NOT NULL" if trashed else "IS NULL"
    return (
        f"SELECT {IMAGE_COLUMNS} {IMAGE_FROM} "
        f"WHERE e.user_id = ? AND e.sha256 = ? AND e.deleted_at {state}"
    )


def page_sql(trashed: bool, after: bool) -> str:
    """A page in timeline order (or trash order), after a cursor's position or from the top.

    `(key, sha256) < (?, ?)` is a row-value comparison, which SQLite seeks to in the
    partial index (entries_library / entries_trash) rather than filtering row by row.
    """
    key = "e.deleted_at" if trashed else "e.taken_ts"
    state = "IS NOT NULL" if trashed else "IS NULL"
    sql = f"SELECT {IMAGE_COLUMNS} {IMAGE_FROM} WHERE e.user_id = ? AND e.deleted_at {state}"
    if after:
        sql += f" AND ({key}, e.sha256) < (?, ?)"
    return sql + f" ORDER BY {key} DESC, e.sha256 DESC LIMIT ?"


def _month_start(moment: str) -> str:
    return f"CAST(strftime('%s', {moment}, 'unixepoch', 'start of month') AS REAL)"


_LIVE = "user_id = ?1 AND deleted_at IS NULL"
_BEFORE = f"(SELECT max(taken_ts) FROM entries WHERE {_LIVE} AND taken_ts < lo)"
# The library's months, newest first, with how many photos each holds, by the UTC
# month of the sort time (a time taken without an offset counts as UTC, so that is the
# month its camera's clock showed). No walk of the library grouped by a month
# expression (that reads every entry and sorts them all in a temporary tree): from the
# newest photo, each step seeks the newest photo before the month found last (one
# search of entries_library), and each month is counted over its own range of that
# index, covering. The work is a seek per month plus a count of index entries; a gap of
# years costs one step. 9e999 is SQLite's infinity: the newest month has no upper bound.
MONTHS_SQL = f"""
WITH RECURSIVE months(lo, hi) AS (
    SELECT {_month_start(f"(SELECT max(taken_ts) FROM entries WHERE {_LIVE})")}, 9e999
    UNION ALL
    SELECT {_month_start(_BEFORE)}, lo
    FROM months WHERE lo IS NOT NULL
)
SELECT strftime('%Y-%m', lo, 'unixepoch') AS month,
    (SELECT count(*) FROM entries WHERE {_LIVE} AND taken_ts >= lo AND taken_ts < hi) AS count
FROM months WHERE lo IS NOT NULL
"""

# Each entry carries its blob's md5, and the library's entries are indexed by it.
FIND_BY_MD5_SQL = (
    f"SELECT {IMAGE_COLUMNS} "
    "FROM entries e INDEXED BY entries_md5 CROSS JOIN blobs b ON b.sha256 = e.sha256 "
    "WHERE e.user_id = ? AND e.md5 = ? AND e.deleted_at IS NULL "
    "ORDER BY e.uploaded_at DESC LIMIT 1"
)


def present_sql(field: HashField, count: int) -> str:
    """Which of `count` hashes the user has, in the library and not damaged.

    A damaged photo counts as missing, so the phone sends it again and the upload heals
    it. Each hash costs one search of a large index (the entries' primary key, or their
    md5 index of the library), covering, so no row is read: trash and damage are asked
    of partial indexes that hold only trashed entries and damaged blobs, a few pages
    SQLite keeps in its cache. (The md5 index holds no trashed entry at all.)
    """
    marks = ",".join("?" * count)
    undamaged = (
        "NOT EXISTS (SELECT 1 FROM blobs d INDEXED BY blobs_damaged "
        "WHERE d.sha256 = e.sha256 AND d.damage IS NOT NULL)"
    )
    if field == "sha256":
        return (
            f"SELECT e.sha256 FROM entries e WHERE e.user_id = ? AND e.sha256 IN ({marks}) "
            "AND NOT EXISTS (SELECT 1 FROM entries t INDEXED BY entries_trashed "
            "WHERE t.user_id = e.user_id AND t.sha256 = e.sha256 AND t.deleted_at IS NOT NULL) "
            f"AND {undamaged}"
        )
    return (
        "SELECT e.md5 FROM entries e INDEXED BY entries_md5 "
        f"WHERE e.user_id = ? AND e.md5 IN ({marks}) AND e.deleted_at IS NULL AND {undamaged}"
    )


def present_params(field: HashField, user_id: int, values: list[str]) -> list[Any]:
    return [user_id, *values]


_SHA = "0" * 64
_MD5 = "0" * 32
PLANNED: dict[str, tuple[str, list[Any]]] = {
    "first page": (page_sql(False, False), [1, 101]),
    "a page by cursor": (page_sql(False, True), [1, 0.0, _SHA, 101]),
    "trash page by cursor": (page_sql(True, True), [1, 0.0, _SHA, 101]),
    "one photo": (get_sql(False), [1, _SHA]),
    "check sha256": (present_sql("sha256", 3), present_params("sha256", 1, [_SHA] * 3)),
    "check md5": (present_sql("md5", 3), present_params("md5", 1, [_MD5] * 3)),
    "find by md5": (FIND_BY_MD5_SQL, [1, _MD5]),
    "months": (MONTHS_SQL, [1]),
}


def plans(db: sqlite3.Connection) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of each query above, as SQLite would run it on this database."""
    return {
        name: [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        for name, (sql, params) in PLANNED.items()
    }
