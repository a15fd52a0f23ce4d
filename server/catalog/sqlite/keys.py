"""SQLite: the server's own random keys, kept with the catalog."""

from __future__ import annotations

from .connection import Connection


class SQLiteKeys(Connection):
    def _server_key(self, name: str, candidate: bytes, now: float) -> bytes:
        self._db.execute(
            "INSERT INTO server_keys (name, secret, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, candidate, now),
        )
        row = self._db.execute("SELECT secret FROM server_keys WHERE name = ?", (name,)).fetchone()
        return bytes(row["secret"])

    async def server_key(self, name: str, candidate: bytes, now: float) -> bytes:
        # Durable (synced) before anything signed with it goes out.
        return await self._write(self._server_key, name, candidate, now)
