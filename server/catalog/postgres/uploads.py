"""PostgreSQL: tus uploads."""

from __future__ import annotations

from ..fields import UPLOAD_FIELDS, columns, upload_from_row, upload_values
from ..records import UploadRecord
from .connection import Conn, Connection, one, rows

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
            cursor = await conn.execute("DELETE FROM uploads WHERE id = %s", (upload_id,))
            return cursor.rowcount > 0

        return await self._write(work)

    async def expired_uploads(self, now: float) -> list[UploadRecord]:
        async def work(conn: Conn) -> list[UploadRecord]:
            found = await rows(
                conn,
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE expires_at <= %s ORDER BY expires_at",
                (now,),
            )
            return [upload_from_row(row) for row in found]

        return await self._read(work)

    async def upload_ids(self) -> set[str]:
        async def work(conn: Conn) -> set[str]:
            return {row["id"] for row in await rows(conn, "SELECT id FROM uploads")}

        return await self._read(work)
