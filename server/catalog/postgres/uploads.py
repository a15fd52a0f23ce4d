"""PostgreSQL: tus uploads."""

from __future__ import annotations

from collections.abc import Sequence

from ..fields import UPLOAD_FIELDS, columns, upload_from_row, upload_values
from ..records import OpenUploads, UploadRecord
from .connection import Conn, Connection, affected, one, rows

_UPLOAD_COLUMNS = columns(UPLOAD_FIELDS)
_MARKS = ", ".join("%s::jsonb" if name == "metadata" else "%s" for name in UPLOAD_FIELDS)


class PostgresUploads(Connection):
    async def add_upload(self, upload: UploadRecord) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES ({_MARKS})",
                upload_values(upload, truth=bool),
            )

        await self._write(work)

    async def add_upload_within(
        self, upload: UploadRecord, max_open: int, max_bytes: int
    ) -> OpenUploads | None:
        async def work(conn: Conn) -> OpenUploads | None:
            # The user's row, locked: two processes creating uploads for one user count
            # one after the other.
            await conn.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (upload.user_id,))
            row = await one(
                conn,
                "SELECT count(*) AS n, coalesce(sum(length), 0) AS bytes FROM uploads "
                "WHERE user_id = %s AND expires_at > %s AND image_sha256 IS NULL "
                'AND "offset" < length',
                (upload.user_id, upload.created_at),
            )
            assert row is not None
            held = OpenUploads(int(row["n"]), int(row["bytes"]))
            if held.count + 1 > max_open or held.length + upload.length > max_bytes:
                return held
            await conn.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES ({_MARKS})",
                upload_values(upload, truth=bool),
            )
            return None

        return await self._write(work)

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        async def work(conn: Conn) -> UploadRecord | None:
            row = await one(
                conn, f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = %s", (upload_id,)
            )
            return None if row is None else upload_from_row(row)

        return await self._read(work)

    async def set_upload_offset(
        self, upload_id: str, offset: int, expires_at: float
    ) -> UploadRecord | None:
        async def work(conn: Conn) -> UploadRecord | None:
            row = await one(
                conn,
                'UPDATE uploads SET "offset" = %s, expires_at = %s WHERE id = %s '
                f"RETURNING {_UPLOAD_COLUMNS}",
                (offset, expires_at, upload_id),
            )
            return None if row is None else upload_from_row(row)

        return await self._write(work)

    async def complete_upload(
        self, upload_id: str, image_sha256: str, duplicate: bool, expires_at: float
    ) -> UploadRecord | None:
        async def work(conn: Conn) -> UploadRecord | None:
            row = await one(
                conn,
                'UPDATE uploads SET "offset" = length, image_sha256 = %s, duplicate = %s, '
                f"expires_at = %s WHERE id = %s RETURNING {_UPLOAD_COLUMNS}",
                (image_sha256, duplicate, expires_at, upload_id),
            )
            return None if row is None else upload_from_row(row)

        return await self._write(work)

    async def delete_upload(self, upload_id: str) -> bool:
        async def work(conn: Conn) -> bool:
            changed = await affected(conn, "DELETE FROM uploads WHERE id = %s", (upload_id,))
            return changed > 0

        return await self._write(work)

    async def expired_uploads(
        self, now: float, after: tuple[float, str] | None = None, limit: int = 500
    ) -> list[UploadRecord]:
        """Uploads expired by `now`, oldest first, `limit` at a time after `after`
        (the expiry and id of the last one of the batch before)."""
        start = after or (float("-inf"), "")

        async def work(conn: Conn) -> list[UploadRecord]:
            found = await rows(
                conn,
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE expires_at <= %s "
                "AND (expires_at, id) > (%s, %s) ORDER BY expires_at, id LIMIT %s",
                (now, start[0], start[1], limit),
            )
            return [upload_from_row(row) for row in found]

        return await self._read(work)

    async def known_uploads(self, ids: Sequence[str]) -> set[str]:
        """Which of these upload ids have a row."""
        if not ids:
            return set()
        wanted = list(ids)

        async def work(conn: Conn) -> set[str]:
            found = await rows(conn, "SELECT id FROM uploads WHERE id = ANY(%s)", (wanted,))
            return {row["id"] for row in found}

        return await self._read(work)

    async def upload_ids(self) -> set[str]:
        async def work(conn: Conn) -> set[str]:
            return {row["id"] for row in await rows(conn, "SELECT id FROM uploads")}

        return await self._read(work)
