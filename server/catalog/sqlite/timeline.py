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

__all__ = ["IMAGE_COLUMNS", "IMAGE_FROM", "PLANNED", "plans"]

# CROSS JOIN is SQLite's way to fix the order of a join, so that a plan does not
# change with what ANALYZE finds. Most lookups go from the user's entries (their
# indexes hold the timeline's order and the user's hashes) to each one's blob.
IMAGE_FROM = "FROM entries e CROSS JOIN blobs b ON b.sha256 = e.sha256"
# Looked up by a blob's md5: the blobs first (by their md5 index), then the entry of
# each (by its primary key). Left to itself, SQLite walks every entry of the user.
_BY_MD5_FROM = "FROM blobs b CROSS JOIN entries e ON e.sha256 = b.sha256"


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


FIND_BY_MD5_SQL = (
    f"SELECT {IMAGE_COLUMNS} {_BY_MD5_FROM} "
    "WHERE b.md5 = ? AND e.user_id = ? AND e.deleted_at IS NULL "
    "ORDER BY e.uploaded_at DESC LIMIT 1"
)


def present_sql(field: HashField, count: int) -> str:
    """Which of `count` hashes the user has, in the library and not damaged.

    A damaged photo counts as missing, so the phone sends it again and the upload heals
    it. Each hash costs one search of a large index (the entries' primary key, or the
    blobs' md5 and then that key), covering, so no row is read: trash and damage are
    asked of partial indexes that hold only trashed entries and damaged blobs, a few
    pages SQLite keeps in its cache.
    """
    marks = ",".join("?" * count)
    kept = (
        "NOT EXISTS (SELECT 1 FROM entries t INDEXED BY entries_trashed "
        "WHERE t.user_id = e.user_id AND t.sha256 = e.sha256 AND t.deleted_at IS NOT NULL) "
        "AND NOT EXISTS (SELECT 1 FROM blobs d INDEXED BY blobs_damaged "
        "WHERE d.sha256 = e.sha256 AND d.damage IS NOT NULL)"
    )
    if field == "sha256":
        return (
            f"SELECT e.sha256 FROM entries e WHERE e.user_id = ? AND e.sha256 IN ({marks}) "
            f"AND {kept}"
        )
    return f"SELECT b.md5 {_BY_MD5_FROM} WHERE b.md5 IN ({marks}) AND e.user_id = ? AND {kept}"


def present_params(field: HashField, user_id: int, values: list[str]) -> list[Any]:
    return [user_id, *values] if field == "sha256" else [*values, user_id]


_SHA = "0" * 64
_MD5 = "0" * 32
PLANNED: dict[str, tuple[str, list[Any]]] = {
    "first page": (page_sql(False, False), [1, 101]),
    "a page by cursor": (page_sql(False, True), [1, 0.0, _SHA, 101]),
    "trash page by cursor": (page_sql(True, True), [1, 0.0, _SHA, 101]),
    "one photo": (get_sql(False), [1, _SHA]),
    "check sha256": (present_sql("sha256", 3), present_params("sha256", 1, [_SHA] * 3)),
    "check md5": (present_sql("md5", 3), present_params("md5", 1, [_MD5] * 3)),
    "find by md5": (FIND_BY_MD5_SQL, [_MD5, 1]),
}


def plans(db: sqlite3.Connection) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of each query above, as SQLite would run it on this database."""
    return {
        name: [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        for name, (sql, params) in PLANNED.items()
    }
