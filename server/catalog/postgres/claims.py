"""PostgreSQL: leases on work one process does for all (a derived image being made)."""

from __future__ import annotations

from .connection import Conn, Connection, one, rows

# Taken when absent, ended, or already this holder's (a renewal); otherwise no row.
_CLAIM = """
INSERT INTO leases AS l (key, holder, expires_at) VALUES (%(key)s, %(holder)s, %(ends)s)
ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.expires_at <= %(now)s OR l.holder = excluded.holder
RETURNING l.holder
"""


class PostgresClaims(Connection):
    async def claim(self, key: str, holder: str, now: float, ttl: float) -> bool:
        params = {"key": key, "holder": holder, "now": now, "ends": now + ttl}

        async def work(conn: Conn) -> bool:
            return await one(conn, _CLAIM, params) is not None

        return await self._write_unsynced(work)

    async def release(self, key: str, holder: str) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute("DELETE FROM leases WHERE key = %s AND holder = %s", (key, holder))

        await self._write_unsynced(work)

    async def claim_holder(self, key: str, now: float) -> str | None:
        async def work(conn: Conn) -> str | None:
            row = await one(
                conn, "SELECT holder FROM leases WHERE key = %s AND expires_at > %s", (key, now)
            )
            return None if row is None else str(row["holder"])

        return await self._read(work)

    async def sweep_claims(self, now: float) -> int:
        async def work(conn: Conn) -> int:
            # RETURNING, as a count: a statement sent in a pipeline has no rowcount yet.
            swept = await rows(
                conn, "DELETE FROM leases WHERE expires_at <= %s RETURNING 1", (now,)
            )
            return len(swept)

        return await self._write_unsynced(work)
