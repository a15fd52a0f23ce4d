"""SQLite: leases on derived work, as PostgreSQL keeps them."""

from __future__ import annotations

from .connection import Connection

_CLAIM = """
INSERT INTO leases AS l (key, holder, expires_at) VALUES (:key, :holder, :ends)
ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.expires_at <= :now OR l.holder = excluded.holder
RETURNING holder
"""


class SQLiteClaims(Connection):
    def _claim(self, params: dict[str, object]) -> bool:
        return self._db.execute(_CLAIM, params).fetchone() is not None

    async def claim(self, key: str, holder: str, now: float, ttl: float) -> bool:
        params: dict[str, object] = {"key": key, "holder": holder, "now": now, "ends": now + ttl}
        return await self._write_unsynced(self._claim, params)

    def _release(self, key: str, holder: str) -> None:
        self._db.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder))

    async def release(self, key: str, holder: str) -> None:
        await self._write_unsynced(self._release, key, holder)

    def _claim_holder(self, key: str, now: float) -> str | None:
        row = self._db.execute(
            "SELECT holder FROM leases WHERE key = ? AND expires_at > ?", (key, now)
        ).fetchone()
        return None if row is None else str(row["holder"])

    async def claim_holder(self, key: str, now: float) -> str | None:
        return await self._run(self._claim_holder, key, now)

    def _sweep_claims(self, now: float) -> int:
        return self._db.execute("DELETE FROM leases WHERE expires_at <= ?", (now,)).rowcount

    async def sweep_claims(self, now: float) -> int:
        return await self._write_unsynced(self._sweep_claims, now)
