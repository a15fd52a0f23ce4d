"""SQLite: tus uploads."""

from __future__ import annotations

from collections.abc import Sequence

from ..fields import UPLOAD_FIELDS, columns, upload_from_row, upload_values
from ..records import OpenUploads, UploadRecord
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

    def _open_uploads(self, user_id: int, now: float) -> OpenUploads:
        row = self._db.execute(
            "SELECT COUNT(*) AS n, COALESCE(SUM(length), 0) AS bytes FROM uploads "
            'WHERE user_id = ? AND expires_at > ? AND image_sha256 IS NULL AND "offset" < length',
            (user_id, now),
        ).fetchone()
        return OpenUploads(row["n"], row["bytes"])

    def _add_upload_within(
        self, upload: UploadRecord, max_open: int, max_bytes: int
    ) -> OpenUploads | None:
        held = self._open_uploads(upload.user_id, upload.created_at)
        if held.count + 1 > max_open or held.length + upload.length > max_bytes:
            return held
        self._add_upload(upload)
        return None

    async def add_upload_within(
        self, upload: UploadRecord, max_open: int, max_bytes: int
    ) -> OpenUploads | None:
        return await self._write(self._add_upload_within, upload, max_open, max_bytes)

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

    def _expired_uploads(
        self, now: float, after: tuple[float, str] | None, limit: int
    ) -> list[UploadRecord]:
        start = after or (float("-inf"), "")
        rows = self._db.execute(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE expires_at <= ? "
            "AND (expires_at, id) > (?, ?) ORDER BY expires_at, id LIMIT ?",
            (now, start[0], start[1], limit),
        ).fetchall()
        return [upload_from_row(row) for row in rows]

    async def expired_uploads(
        self, now: float, after: tuple[float, str] | None = None, limit: int = 500
    ) -> list[UploadRecord]:
        """Uploads expired by `now`, oldest first, `limit` at a time after `after`
        (the expiry and id of the last one of the batch before)."""
        return await self._run(self._expired_uploads, now, after, limit)

    def _known_uploads(self, ids: Sequence[str]) -> set[str]:
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(f"SELECT id FROM uploads WHERE id IN ({marks})", tuple(ids))
        return {row["id"] for row in rows}

    async def known_uploads(self, ids: Sequence[str]) -> set[str]:
        """Which of these upload ids have a row (at most a few hundred at a time)."""
        return await self._run(self._known_uploads, list(ids)) if ids else set()

    def _upload_ids(self) -> set[str]:
        return {row["id"] for row in self._db.execute("SELECT id FROM uploads")}

    async def upload_ids(self) -> set[str]:
        return await self._run(self._upload_ids)
