"""SQLite: attempt windows, as PostgreSQL keeps them (one process uses them here)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..coordination import Window
from .connection import Connection

# As in PostgreSQL: one statement counts the attempt against every key; a window that
# has ended starts again; an unknown key is taken in only below the cap.
_COUNT = """
INSERT INTO throttles AS t (kind, key, hits, expires_at)
SELECT :kind, u.value, 1, :ends
FROM json_each(:keys) AS u
WHERE EXISTS (SELECT 1 FROM throttles k WHERE k.kind = :kind AND k.key = u.value)
   OR (SELECT count(*) FROM throttles c WHERE c.kind = :kind) < :max_keys
ON CONFLICT (kind, key) DO UPDATE SET
    hits = CASE WHEN t.expires_at <= :now THEN 1 ELSE min(t.hits + 1, 2147483647) END,
    expires_at = CASE WHEN t.expires_at <= :now THEN excluded.expires_at ELSE t.expires_at END
RETURNING key, hits, expires_at
"""


class SQLiteThrottles(Connection):
    def _count(self, params: dict[str, object], keys: list[str]) -> dict[str, Window]:
        found = self._db.execute(_COUNT, {**params, "keys": json.dumps(keys)}).fetchall()
        return {row["key"]: Window(row["hits"], row["expires_at"]) for row in found}

    def _count_attempt(
        self, kind: str, keys: list[str], now: float, window: float, max_keys: int
    ) -> dict[str, Window]:
        params: dict[str, object] = {
            "kind": kind,
            "now": now,
            "ends": now + window,
            "max_keys": max_keys,
        }
        counted = self._count(params, keys)
        if len(counted) < len(keys):
            freed = self._db.execute(
                "DELETE FROM throttles WHERE kind = ? AND expires_at <= ?", (kind, now)
            ).rowcount
            if freed:
                counted |= self._count(params, [key for key in keys if key not in counted])
        return counted

    async def count_attempt(
        self, kind: str, keys: Sequence[str], now: float, window: float, max_keys: int
    ) -> dict[str, Window]:
        unique = list(dict.fromkeys(keys))
        return await self._write_unsynced(self._count_attempt, kind, unique, now, window, max_keys)
