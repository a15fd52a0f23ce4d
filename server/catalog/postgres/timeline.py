"""The timeline's SQL on PostgreSQL: the same pages, keyset by (time, sha256).

Each query is a search of one index bounded by its LIMIT or its keys: a page walks
entries_library (or entries_trash) from the cursor's row comparison, which PostgreSQL
turns into an index condition; a check of hashes is one `= ANY` of the entries' key
or the entries' md5 index. `plans()` shows PostgreSQL's plans of them.
"""

from __future__ import annotations

from typing import Any

from ..fields import IMAGE_COLUMNS
from ..records import HashField
from .connection import Conn, rows

IMAGE_FROM = "FROM entries e JOIN blobs b ON b.sha256 = e.sha256"


def get_sql(trashed: bool) -> str:
    state = "IS NOT NULL" if trashed else "IS NULL"
    return (
        f"SELECT {IMAGE_COLUMNS} {IMAGE_FROM} "
        f"WHERE e.user_id = %s AND e.sha256 = %s AND e.deleted_at {state}"
    )


def page_sql(trashed: bool, after: bool) -> str:
    key = "e.deleted_at" if trashed else "e.taken_ts"
    state = "IS NOT NULL" if trashed else "IS NULL"
    sql = f"SELECT {IMAGE_COLUMNS} {IMAGE_FROM} WHERE e.user_id = %s AND e.deleted_at {state}"
    if after:
        sql += f" AND ({key}, e.sha256) < (%s, %s)"
    return sql + f" ORDER BY {key} DESC, e.sha256 DESC LIMIT %s"


def _month_start(moment: str) -> str:
    return f"extract(epoch FROM date_trunc('month', to_timestamp({moment}) AT TIME ZONE 'UTC'))"


_LIVE = "user_id = %(user)s AND deleted_at IS NULL"
_BEFORE = f"(SELECT max(taken_ts) FROM entries WHERE {_LIVE} AND taken_ts < months.lo)"
# The library's months, newest first, with their counts, by the UTC month of the sort
# time, as on SQLite: from the newest photo, each step seeks the newest photo before
# the month found last (an index search of entries_library), and each month is counted
# over its own range of that index: a seek per month and a count of index entries,
# never a sort of the library.
MONTHS_SQL = f"""
WITH RECURSIVE months(lo, hi) AS (
    SELECT {_month_start(f"(SELECT max(taken_ts) FROM entries WHERE {_LIVE})")}::float8,
        'Infinity'::float8
    UNION ALL
    SELECT {_month_start(_BEFORE)}::float8, months.lo
    FROM months WHERE months.lo IS NOT NULL
)
SELECT to_char(to_timestamp(m.lo) AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
    (SELECT count(*) FROM entries WHERE {_LIVE} AND taken_ts >= m.lo AND taken_ts < m.hi)
        AS count
FROM months m WHERE m.lo IS NOT NULL
"""

FIND_BY_MD5_SQL = (
    f"SELECT {IMAGE_COLUMNS} {IMAGE_FROM} "
    "WHERE e.user_id = %s AND e.md5 = %s AND e.deleted_at IS NULL "
    "ORDER BY e.uploaded_at DESC LIMIT 1"
)

PRESENT_SQL: dict[HashField, str] = {
    # A damaged photo counts as missing, so the phone sends it again and the upload heals it.
    "sha256": (
        "SELECT e.sha256 FROM entries e WHERE e.user_id = %s AND e.sha256 = ANY(%s) "
        "AND e.deleted_at IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM blobs d WHERE d.sha256 = e.sha256 AND d.damage IS NOT NULL)"
    ),
    # Each entry carries its blob's md5: one search of the library's md5 index.
    "md5": (
        "SELECT e.md5 FROM entries e WHERE e.user_id = %s AND e.md5 = ANY(%s) "
        "AND e.deleted_at IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM blobs d WHERE d.sha256 = e.sha256 AND d.damage IS NOT NULL)"
    ),
}

_SHA = "0" * 64
_MD5 = "0" * 32
PLANNED: dict[str, tuple[str, list[Any] | dict[str, Any]]] = {
    "first page": (page_sql(False, False), [1, 101]),
    "a page by cursor": (page_sql(False, True), [1, 0.0, _SHA, 101]),
    "trash page by cursor": (page_sql(True, True), [1, 0.0, _SHA, 101]),
    "one photo": (get_sql(False), [1, _SHA]),
    "check sha256": (PRESENT_SQL["sha256"], [1, [_SHA] * 3]),
    "check md5": (PRESENT_SQL["md5"], [1, [_MD5] * 3]),
    "find by md5": (FIND_BY_MD5_SQL, [1, _MD5]),
    "months": (MONTHS_SQL, {"user": 1}),
}


async def plans(conn: Conn) -> dict[str, list[str]]:
    """EXPLAIN of each query above, as PostgreSQL would run it on this database."""
    found: dict[str, list[str]] = {}
    for name, (sql, params) in PLANNED.items():
        found[name] = [str(row["QUERY PLAN"]) for row in await rows(conn, "EXPLAIN " + sql, params)]
    return found
