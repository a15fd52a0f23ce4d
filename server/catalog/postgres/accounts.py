"""PostgreSQL: people, tokens and devices, pairing codes, WeChat logins."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..fields import DEVICE_FIELDS, columns, device_from_row
from ..records import Device, User, iso
from .connection import Conn, Connection, affected, one, rows

LAST_SEEN_RESOLUTION = 60.0

_DEVICE_COLUMNS = columns(DEVICE_FIELDS, "t.")


class PostgresAccounts(Connection):
    async def ensure_user(self, name: str) -> User:
        async def work(conn: Conn) -> User:
            await conn.execute(
                "INSERT INTO users (name, created_at) VALUES (%s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, time.time()),
            )
            row = await one(conn, "SELECT id, name FROM users WHERE name = %s", (name,))
            assert row is not None
            return User(row["id"], row["name"])

        return await self._write(work)

    async def add_token(self, user_id: int, token_hash: str, device: str) -> Device:
        now = time.time()

        async def work(conn: Conn) -> Device:
            row = await one(
                conn,
                "INSERT INTO tokens (user_id, token_hash, device, created_at) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (user_id, token_hash, device, now),
            )
            assert row is not None
            return Device(row["id"], user_id, device, iso(now), None)

        return await self._write(work)

    async def user_for_token(self, token_hash: str) -> tuple[User, Device] | None:
        async def work(conn: Conn) -> tuple[User, Device] | None:
            row = await one(
                conn,
                f"SELECT u.name, {_DEVICE_COLUMNS} FROM tokens t "
                "JOIN users u ON u.id = t.user_id "
                "WHERE t.token_hash = %s AND t.revoked_at IS NULL",
                (token_hash,),
            )
            if row is None:
                return None
            now = time.time()
            seen = row["last_seen_at"]
            if seen is None or now - seen > LAST_SEEN_RESOLUTION:
                await conn.execute(
                    "UPDATE tokens SET last_seen_at = %s WHERE id = %s", (now, row["id"])
                )
            return User(row["user_id"], row["name"]), device_from_row({**row, "last_seen_at": now})

        return await self._read(work)

    async def add_pairing_code(
        self, code_hash: str, user_id: int, expires_at: float, max_waiting: int | None = None
    ) -> bool:
        async def work(conn: Conn) -> bool:
            # The user's row, locked: two processes making codes for one user count one
            # after the other.
            await conn.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
            now = time.time()
            await conn.execute(
                "DELETE FROM pairing_codes WHERE expires_at < %s OR used_at IS NOT NULL",
                (now,),
            )
            if max_waiting is not None:
                row = await one(
                    conn,
                    "SELECT count(*) AS n FROM pairing_codes WHERE user_id = %s "
                    "AND used_at IS NULL AND expires_at >= %s",
                    (user_id, now),
                )
                assert row is not None
                if row["n"] >= max_waiting:
                    return False
            changed = await affected(
                conn,
                "INSERT INTO pairing_codes (code_hash, user_id, expires_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (code_hash) DO NOTHING",
                (code_hash, user_id, expires_at),
            )
            return changed == 1

        return await self._write(work)

    async def live_pairing_codes(self, user_id: int, now: float) -> list[float]:
        async def work(conn: Conn) -> list[float]:
            found = await rows(
                conn,
                "SELECT expires_at FROM pairing_codes WHERE user_id = %s AND used_at IS NULL "
                "AND expires_at >= %s ORDER BY expires_at",
                (user_id, now),
            )
            return [float(row["expires_at"]) for row in found]

        return await self._read(work)

    async def redeem_pairing_code(self, code_hash: str, now: float) -> User | None:
        async def work(conn: Conn) -> User | None:
            row = await one(
                conn,
                "UPDATE pairing_codes p SET used_at = %s FROM users u "
                "WHERE p.code_hash = %s AND p.used_at IS NULL AND p.expires_at >= %s "
                "AND u.id = p.user_id RETURNING u.id, u.name",
                (now, code_hash, now),
            )
            return None if row is None else User(row["id"], row["name"])

        return await self._write(work)

    async def pairing_guess_failed(self, now: float, limit: int) -> int:
        async def work(conn: Conn) -> int:
            await conn.execute(
                "UPDATE pairing_codes SET failures = failures + 1 "
                "WHERE used_at IS NULL AND expires_at >= %s",
                (now,),
            )
            changed = await affected(
                conn, "DELETE FROM pairing_codes WHERE used_at IS NULL AND failures >= %s", (limit,)
            )
            return changed

        return await self._write(work)

    async def find_user(self, name: str) -> User | None:
        async def work(conn: Conn) -> User | None:
            row = await one(conn, "SELECT id, name FROM users WHERE name = %s", (name,))
            return None if row is None else User(row["id"], row["name"])

        return await self._read(work)

    async def get_user(self, user_id: int) -> User | None:
        async def work(conn: Conn) -> User | None:
            row = await one(conn, "SELECT id, name FROM users WHERE id = %s", (user_id,))
            return None if row is None else User(row["id"], row["name"])

        return await self._read(work)

    async def wechat_user(self, openid: str, names: Sequence[str]) -> User:
        async def work(conn: Conn) -> User:
            row = await one(conn, "SELECT id, name FROM users WHERE wechat_openid = %s", (openid,))
            if row is not None:
                return User(row["id"], row["name"])
            for name in names:
                row = await one(
                    conn,
                    "INSERT INTO users (name, created_at, wechat_openid) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING id, name",
                    (name, time.time(), openid),
                )
                if row is not None:
                    return User(row["id"], row["name"])
            raise ValueError(f"all {len(names)} names offered for a new WeChat user are taken")

        return await self._write(work)

    async def devices(self, user_id: int | None = None) -> list[tuple[User, Device]]:
        sql = (
            f"SELECT u.name, {_DEVICE_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.revoked_at IS NULL"
        )
        params: list[Any] = []
        if user_id is not None:
            sql += " AND t.user_id = %s"
            params.append(user_id)

        async def work(conn: Conn) -> list[tuple[User, Device]]:
            found = await rows(conn, sql + " ORDER BY t.id", params)
            return [(User(row["user_id"], row["name"]), device_from_row(row)) for row in found]

        return await self._read(work)

    async def revoke_device(self, device_id: int, user_id: int | None, now: float) -> Device | None:
        sql = "UPDATE tokens SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL"
        params: list[Any] = [now, device_id]
        if user_id is not None:
            sql += " AND user_id = %s"
            params.append(user_id)

        async def work(conn: Conn) -> Device | None:
            row = await one(conn, f"{sql} RETURNING {columns(DEVICE_FIELDS)}", params)
            return None if row is None else device_from_row(row)

        return await self._write(work)

    async def revoked_devices(self, device_ids: Iterable[int]) -> list[Device]:
        wanted = sorted(set(device_ids))

        async def work(conn: Conn) -> list[Device]:
            found = await rows(
                conn,
                f"SELECT {_DEVICE_COLUMNS} FROM tokens t "
                "WHERE t.revoked_at IS NOT NULL AND t.id = ANY(%s) ORDER BY t.id",
                (wanted,),
            )
            return [device_from_row(row) for row in found]

        return await self._read(work)
