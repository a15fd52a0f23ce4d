"""PostgreSQL: the server's own random keys, one for every process on the catalog."""

from __future__ import annotations

from .connection import Conn, Connection, one


class PostgresKeys(Connection):
    async def server_key(self, name: str, candidate: bytes, now: float) -> bytes:
        async def work(conn: Conn) -> bytes:
            # Of processes inserting at once, one wins; the others wait for its commit,
            # insert nothing, and (each statement seeing what is committed) read its key.
            await conn.execute(
                "INSERT INTO server_keys (name, secret, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, candidate, now),
            )
            row = await one(conn, "SELECT secret FROM server_keys WHERE name = %s", (name,))
            assert row is not None
            return bytes(row["secret"])

        return await self._write(work)
