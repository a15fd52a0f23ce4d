"""SQLite: people, tokens and devices, pairing codes, WeChat logins."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..fields import DEVICE_FIELDS, columns, device_from_row
from ..records import Device, User, iso
from .connection import Connection

LAST_SEEN_RESOLUTION = 60.0

_DEVICE_COLUMNS = columns(DEVICE_FIELDS, "t.")


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["name"])


class SQLiteAccounts(Connection):
    def _ensure_user(self, name: str) -> User:
        self._db.execute(
            "INSERT INTO users (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (name, time.time()),
        )
        return _user(
            self._db.execute("SELECT id, name FROM users WHERE name = ?", (name,)).fetchone()
        )

    async def ensure_user(self, name: str) -> User:
        return await self._write(self._ensure_user, name)

    def _add_token(self, user_id: int, token_hash: str, device: str) -> Device:
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO tokens (user_id, token_hash, device, created_at) VALUES (?, ?, ?, ?)",
            (user_id, token_hash, device, now),
        )
        assert cursor.lastrowid is not None
        return Device(cursor.lastrowid, user_id, device, iso(now), None)

    async def add_token(self, user_id: int, token_hash: str, device: str) -> Device:
        return await self._write(self._add_token, user_id, token_hash, device)

    def _user_for_token(self, token_hash: str) -> tuple[User, Device] | None:
        row = self._db.execute(
            f"SELECT u.name, {_DEVICE_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = ? AND t.revoked_at IS NULL",
            (token_hash,),
        ).fetchone()
        if row is None:
            return None
        now = time.time()
        seen = row["last_seen_at"]
        if seen is None or now - seen > LAST_SEEN_RESOLUTION:
            # Only a note: a full disk must not turn every request away.
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.execute(
                    "UPDATE tokens SET last_seen_at = ? WHERE id = ?", (now, row["id"])
                )
        device = device_from_row({**dict(row), "last_seen_at": now})
        return User(row["user_id"], row["name"]), device

    async def user_for_token(self, token_hash: str) -> tuple[User, Device] | None:
        return await self._run(self._user_for_token, token_hash)

    def _add_pairing_code(
        self, code_hash: str, user_id: int, expires_at: float, max_waiting: int | None
    ) -> bool:
        # In one write transaction (BEGIN IMMEDIATE): the count and the new code are one
        # step for every connection to the file.
        now = time.time()
        self._db.execute(
            "DELETE FROM pairing_codes WHERE expires_at < ? OR used_at IS NOT NULL", (now,)
        )
        if max_waiting is not None:
            (waiting,) = self._db.execute(
                "SELECT count(*) FROM pairing_codes WHERE user_id = ? "
                "AND used_at IS NULL AND expires_at >= ?",
                (user_id, now),
            ).fetchone()
            if waiting >= max_waiting:
                return False
        cursor = self._db.execute(
            "INSERT INTO pairing_codes (code_hash, user_id, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (code_hash) DO NOTHING",
            (code_hash, user_id, expires_at),
        )
        return cursor.rowcount == 1

    async def add_pairing_code(
        self, code_hash: str, user_id: int, expires_at: float, max_waiting: int | None = None
    ) -> bool:
        return await self._write(
            self._add_pairing_code, code_hash, user_id, expires_at, max_waiting
        )

    def _live_pairing_codes(self, user_id: int, now: float) -> list[float]:
        found = self._db.execute(
            "SELECT expires_at FROM pairing_codes WHERE user_id = ? AND used_at IS NULL "
            "AND expires_at >= ? ORDER BY expires_at",
            (user_id, now),
        ).fetchall()
        return [float(row["expires_at"]) for row in found]

    async def live_pairing_codes(self, user_id: int, now: float) -> list[float]:
        return await self._run(self._live_pairing_codes, user_id, now)

    def _redeem_pairing_code(self, code_hash: str, now: float) -> User | None:
        row = self._db.execute(
            "UPDATE pairing_codes SET used_at = ? "
            "WHERE code_hash = ? AND used_at IS NULL AND expires_at >= ? RETURNING user_id",
            (now, code_hash, now),
        ).fetchone()
        if row is None:
            return None
        return _user(
            self._db.execute(
                "SELECT id, name FROM users WHERE id = ?", (row["user_id"],)
            ).fetchone()
        )

    async def redeem_pairing_code(self, code_hash: str, now: float) -> User | None:
        return await self._write(self._redeem_pairing_code, code_hash, now)

    def _pairing_guess_failed(self, now: float, limit: int) -> int:
        self._db.execute(
            "UPDATE pairing_codes SET failures = failures + 1 "
            "WHERE used_at IS NULL AND expires_at >= ?",
            (now,),
        )
        cursor = self._db.execute(
            "DELETE FROM pairing_codes WHERE used_at IS NULL AND failures >= ?", (limit,)
        )
        return cursor.rowcount

    async def pairing_guess_failed(self, now: float, limit: int) -> int:
        return await self._write(self._pairing_guess_failed, now, limit)

    def _find_user(self, name: str) -> User | None:
        row = self._db.execute("SELECT id, name FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else _user(row)

    async def find_user(self, name: str) -> User | None:
        return await self._run(self._find_user, name)

    def _get_user(self, user_id: int) -> User | None:
        row = self._db.execute("SELECT id, name FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else _user(row)

    async def get_user(self, user_id: int) -> User | None:
        return await self._run(self._get_user, user_id)

    def _wechat_user(self, openid: str, names: Sequence[str]) -> User:
        row = self._db.execute(
            "SELECT id, name FROM users WHERE wechat_openid = ?", (openid,)
        ).fetchone()
        if row is not None:
            return _user(row)
        for name in names:
            cursor = self._db.execute(
                "INSERT INTO users (name, created_at, wechat_openid) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (name, time.time(), openid),
            )
            if cursor.rowcount == 1:
                assert cursor.lastrowid is not None
                return User(cursor.lastrowid, name)
        raise ValueError(f"all {len(names)} names offered for a new WeChat user are taken")

    async def wechat_user(self, openid: str, names: Sequence[str]) -> User:
        return await self._write(self._wechat_user, openid, list(names))

    def _devices(self, user_id: int | None) -> list[tuple[User, Device]]:
        sql = (
            f"SELECT u.name, {_DEVICE_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.revoked_at IS NULL"
        )
        params: list[Any] = []
        if user_id is not None:
            sql += " AND t.user_id = ?"
            params.append(user_id)
        rows = self._db.execute(sql + " ORDER BY t.id", params)
        return [(User(row["user_id"], row["name"]), device_from_row(row)) for row in rows]

    async def devices(self, user_id: int | None = None) -> list[tuple[User, Device]]:
        return await self._run(self._devices, user_id)

    def _revoke_device(self, device_id: int, user_id: int | None, now: float) -> Device | None:
        sql = "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        params: list[Any] = [now, device_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        row = self._db.execute(f"{sql} RETURNING {columns(DEVICE_FIELDS)}", params).fetchone()
        return None if row is None else device_from_row(row)

    async def revoke_device(self, device_id: int, user_id: int | None, now: float) -> Device | None:
        return await self._write(self._revoke_device, device_id, user_id, now)

    def _revoked_devices(self, device_ids: list[int]) -> list[Device]:
        found: list[Device] = []
        for start in range(0, len(device_ids), 500):
            batch = device_ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM tokens t "
                f"WHERE t.revoked_at IS NOT NULL AND t.id IN ({marks}) ORDER BY t.id",
                batch,
            )
            found.extend(device_from_row(row) for row in rows)
        return found

    async def revoked_devices(self, device_ids: Iterable[int]) -> list[Device]:
        return await self._run(self._revoked_devices, sorted(set(device_ids)))
