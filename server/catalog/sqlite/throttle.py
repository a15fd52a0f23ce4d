"""SQLite: attempt windows, as PostgreSQL keeps them (one process uses them here)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..coordination import Window
from .connection import Connection

# As in PostgreSQL: one statement counts the attempt against every key, or against
# none when one is at its limit; a window that has ended starts again; an unknown key
# is taken in only below the cap.
_COUNT = """
WITH wanted AS (
    SELECT j.key AS key, j.value AS lim FROM json_each(:limits) AS j
), verdict AS (
    SELECT NOT EXISTS (
        SELECT 1 FROM throttles o JOIN wanted ON o.key = wanted.key
        WHERE o.kind = :kind AND o.expires_at > :now AND o.hits >= wanted.lim
    ) AS counted
)
INSERT INTO throttles AS t (kind, key, hits, counted, expires_at)
SELECT :kind, wanted.key, verdict.counted, verdict.counted, :ends
FROM wanted, verdict
WHERE EXISTS (SELECT 1 FROM throttles k WHERE k.kind = :kind AND k.key = wanted.key)
   OR (SELECT count(*) FROM throttles c WHERE c.kind = :kind) < :max_keys
ON CONFLICT (kind, key) DO UPDATE SET
    hits = CASE WHEN t.expires_at <= :now THEN excluded.hits
                WHEN excluded.counted THEN min(t.hits, 2147483646) + 1
                ELSE t.hits END,
    counted = excluded.counted,
    expires_at = CASE WHEN t.expires_at <= :now THEN excluded.expires_at ELSE t.expires_at END
RETURNING key, hits, counted, expires_at
"""


class SQLiteThrottles(Connection):
    def _count(self, params: dict[str, object], limits: Mapping[str, int]) -> dict[str, Window]:
        found = self._db.execute(_COUNT, {**params, "limits": json.dumps(dict(limits))})
        return {
            row["key"]: Window(row["hits"], row["expires_at"], bool(row["counted"]))
            for row in found.fetchall()
        }

    def _count_attempt(
        self, kind: str, limits: Mapping[str, int], now: float, window: float, max_keys: int
    ) -> dict[str, Window]:
        params: dict[str, object] = {
            "kind": kind,
            "now": now,
            "ends": now + window,
            "max_keys": max_keys,
        }
        counted = self._count(params, limits)
        if len(counted) < len(limits):
            freed = self._db.execute(
                "DELETE FROM throttles WHERE kind = ? AND expires_at <= ?", (kind, now)
            ).rowcount
            if freed:
                left_out = {key: limit for key, limit in limits.items() if key not in counted}
                counted |= self._count(params, left_out)
        return counted

    async def count_attempt(
        self, kind: str, limits: Mapping[str, int], now: float, window: float, max_keys: int
    ) -> dict[str, Window]:
        return await self._write_unsynced(
            self._count_attempt, kind, dict(limits), now, window, max_keys
        )
