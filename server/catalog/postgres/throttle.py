"""PostgreSQL: attempt windows shared by every process on the catalog."""

from __future__ import annotations

from collections.abc import Sequence

from ..coordination import Window
from .connection import Conn, Connection, affected, rows

# One statement counts the attempt against every key: a window that has ended starts
# again, an unknown key is taken in only below the cap. Concurrent attempts on one key
# queue on its row, so none is lost; the cap is read before the statement's own rows
# (and other processes' uncommitted ones), so it may be passed by the few keys of
# the attempts in flight, never more.
_COUNT = """
INSERT INTO throttles AS t (kind, key, hits, expires_at)
SELECT %(kind)s, u.key, 1, %(ends)s
FROM unnest(%(keys)s::text[]) AS u(key)
WHERE EXISTS (SELECT 1 FROM throttles k WHERE k.kind = %(kind)s AND k.key = u.key)
   OR (SELECT count(*) FROM throttles c WHERE c.kind = %(kind)s) < %(max_keys)s
ON CONFLICT (kind, key) DO UPDATE SET
    hits = CASE WHEN t.expires_at <= %(now)s THEN 1 ELSE least(t.hits + 1, 2147483647) END,
    expires_at = CASE WHEN t.expires_at <= %(now)s THEN excluded.expires_at
                      ELSE t.expires_at END
RETURNING t.key, t.hits, t.expires_at
"""


class PostgresThrottles(Connection):
    async def count_attempt(
        self, kind: str, keys: Sequence[str], now: float, window: float, max_keys: int
    ) -> dict[str, Window]:
        unique = list(dict.fromkeys(keys))
        params: dict[str, object] = {
            "kind": kind,
            "keys": unique,
            "now": now,
            "ends": now + window,
            "max_keys": max_keys,
        }

        async def work(conn: Conn) -> dict[str, Window]:
            counted = await rows(conn, _COUNT, params)
            if len(counted) < len(unique):
                # Full: the ended windows make room, and the keys left out try once more
                # (those counted are not counted again: they are known now).
                freed = await affected(
                    conn,
                    "DELETE FROM throttles WHERE kind = %s AND expires_at <= %s",
                    (kind, now),
                )
                if freed:
                    known = {row["key"] for row in counted}
                    missing = [key for key in unique if key not in known]
                    counted += await rows(conn, _COUNT, {**params, "keys": missing})
            return {
                row["key"]: Window(int(row["hits"]), float(row["expires_at"])) for row in counted
            }

        # A window lost with the database server's power only lets a few attempts more.
        return await self._write_unsynced(work)
