"""PostgreSQL: attempt windows shared by every process on the catalog."""

from __future__ import annotations

from collections.abc import Mapping

from ..coordination import Window
from .connection import Conn, Connection, affected, rows

# One statement counts the attempt against every key, or (one of them at its limit in
# a live window) against none; a window that has ended starts again; an unknown key is
# taken in only below the cap. Attempts at one key queue on its row, so no count is
# lost; whether one is at its limit, and the cap, are read as the statement starts, so
# attempts at the same moment may each be counted (the caller then sees a window past
# its limit) and may pass the cap by their few keys, never more.
_COUNT = """
WITH wanted AS (
    SELECT * FROM unnest(%(keys)s::text[], %(limits)s::int[]) AS w(key, lim)
), verdict AS (
    SELECT NOT EXISTS (
        SELECT 1 FROM throttles o JOIN wanted ON o.key = wanted.key
        WHERE o.kind = %(kind)s AND o.expires_at > %(now)s AND o.hits >= wanted.lim
    ) AS counted
)
INSERT INTO throttles AS t (kind, key, hits, counted, expires_at)
SELECT %(kind)s, wanted.key, verdict.counted::int, verdict.counted, %(ends)s
FROM wanted, verdict
WHERE EXISTS (SELECT 1 FROM throttles k WHERE k.kind = %(kind)s AND k.key = wanted.key)
   OR (SELECT count(*) FROM throttles c WHERE c.kind = %(kind)s) < %(max_keys)s
ON CONFLICT (kind, key) DO UPDATE SET
    hits = CASE WHEN t.expires_at <= %(now)s THEN excluded.hits
                WHEN excluded.counted THEN least(t.hits, 2147483646) + 1
                ELSE t.hits END,
    counted = excluded.counted,
    expires_at = CASE WHEN t.expires_at <= %(now)s THEN excluded.expires_at
                      ELSE t.expires_at END
RETURNING t.key, t.hits, t.counted, t.expires_at
"""


class PostgresThrottles(Connection):
    async def count_attempt(
        self, kind: str, limits: Mapping[str, int], now: float, window: float, max_keys: int
    ) -> dict[str, Window]:
        params: dict[str, object] = {
            "kind": kind,
            "now": now,
            "ends": now + window,
            "max_keys": max_keys,
        }

        async def count(conn: Conn, keys: list[str]) -> dict[str, Window]:
            found = await rows(
                conn, _COUNT, {**params, "keys": keys, "limits": [limits[k] for k in keys]}
            )
            return {
                row["key"]: Window(int(row["hits"]), float(row["expires_at"]), row["counted"])
                for row in found
            }

        async def work(conn: Conn) -> dict[str, Window]:
            counted = await count(conn, list(limits))
            if len(counted) < len(limits):
                # Full: the ended windows make room, and the keys left out try once more.
                freed = await affected(
                    conn,
                    "DELETE FROM throttles WHERE kind = %s AND expires_at <= %s",
                    (kind, now),
                )
                if freed:
                    counted |= await count(conn, [k for k in limits if k not in counted])
            return counted

        # A window lost with the database server's power only lets a few attempts more.
        return await self._write_unsynced(work)
