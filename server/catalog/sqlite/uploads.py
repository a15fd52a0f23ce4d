"""SQLite: tus uploads."""

from __future__ import annotations

from ..fields import UPLOAD_FIELDS, columns, upload_from_row, upload_values
from ..records import UploadRecord
from .connection import Connection

_UPLOAD_COLUMNS = columns(UPLOAD_FIELDS)


class SQLiteUploads(Connection):
    def _add_upload(self, upload: UploadRecord) -> None:
        marks = ", ".join("?" * len(UPLOAD_FIELDS))
        self._db.execute(
            f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES ({marks})",
            upload_values(upload, truth=int),
        )

    async def add_upload(self, upload: UploadRecord) -> None:
        await self._write(self._add_upload, upload)

    def _get_upload(self, upload_id: str) -> UploadRecord | None:
        row = self._db.execute(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = ?", (upload_id,)
        ).fetchone()
        return None if row is None else upload_from_row(row)

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        return await self._run(self._get_upload, upload_id)

    def _set_upload_offset(
        self, upload_id: str, offset: int, expires_at: float
    ) -> UploadRecord | None:
        self._db.execute(
            'UPDATE uploads SET "offset" = ?, expires_at = ? WHERE id = ?',
            (offset, expires_at, upload_id),
        )
        return self._get_upload(upload_id)

    async def set_upload_offset(
        self, upload_id: str, offset: int, expires_at: float
    ) -> UploadRecord | None:
        return await self._write(self._set_upload_offset, upload_id, offset, expires_at)

    def _complete_upload(
        self, upload_id: str, image_sha256: str, duplicate: bool, expires_at: float
    ) -> UploadRecord | None:
        self._db.execute(
            'UPDATE uploads SET "offset" = length, image_sha256 = ?, duplicate = ?, '
            "expires_at = ? WHERE id = ?",
            (image_sha256, int(duplicate), expires_at, upload_id),
        )
        return self._get_upload(upload_id)

    async def complete_upload(
        self, upload_id: str, image_sha256: str, duplicate: bool, expires_at: float
    ) -> UploadRecord | None:
        return await self._write(
            self._complete_upload, upload_id, image_sha256, duplicate, expires_at
        )

    def _delete_upload(self, upload_id: str) -> bool:
        cursor = self._db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        return cursor.rowcount > 0

    async def delete_upload(self, upload_id: str) -> bool:
        return await self._write(self._delete_upload, upload_id)

    def _expired_uploads(self, now: float) -> list[UploadRecord]:
        rows = self._db.execute(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE expires_at <= ? ORDER BY expires_at",
            (now,),
        )
        return [upload_from_row(row) for row in rows]

    async def expired_uploads(self, now: float) -> list[UploadRecord]:
        return await self._run(self._expired_uploads, now)

    def _upload_ids(self) -> set[str]:
        return {row["id"] for row in self._db.execute("SELECT id FROM uploads")}

    async def upload_ids(self) -> set[str]:
        return await self._run(self._upload_ids)
