"""SQLite: videos' playable previews still to come, and the attempts at each."""

from __future__ import annotations

from ..fields import BLOB_FIELDS, blob_from_row, columns, image_from_row
from ..records import BlobRecord, ImageRecord, PreviewState
from . import timeline
from .connection import Connection

_BLOB_COLUMNS = columns(BLOB_FIELDS)
_PENDING = (
    "kind = 'video' AND preview IS NULL AND decodable = 1 AND damage IS NULL"
    " AND unreferenced_at IS NULL"  # a purged video's is not made for gc to remove
)


class SQLitePreviews(Connection):
    def _pending_previews(self, limit: int) -> list[BlobRecord]:
        rows = self._db.execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE {_PENDING} ORDER BY created_at LIMIT ?",
            (limit,),
        )
        return [blob_from_row(row) for row in rows]

    async def pending_previews(self, limit: int) -> list[BlobRecord]:
        return await self._run(self._pending_previews, limit)

    def _attempt_preview(self, sha256: str) -> int:
        row = self._db.execute(
            "UPDATE blobs SET preview_attempts = preview_attempts + 1 WHERE sha256 = ? "
            "RETURNING preview_attempts",
            (sha256,),
        ).fetchone()
        return 0 if row is None else int(row["preview_attempts"])

    async def attempt_preview(self, sha256: str) -> int:
        # Synced: a count lost to a power cut would let a worker-killing video retry.
        return await self._write(self._attempt_preview, sha256)

    def _entries(self, sha256: str) -> list[ImageRecord]:
        rows = self._db.execute(
            f"SELECT {timeline.IMAGE_COLUMNS} {timeline.IMAGE_FROM} "
            "WHERE e.sha256 = ? AND e.deleted_at IS NULL ORDER BY e.user_id",
            (sha256,),
        )
        return [image_from_row(row) for row in rows]

    def _settle_preview(self, sha256: str, state: PreviewState | None) -> list[ImageRecord]:
        self._db.execute(
            "UPDATE blobs SET preview = ?, preview_attempts = 0 WHERE sha256 = ?",
            (state, sha256),
        )
        return self._entries(sha256)

    async def settle_preview(self, sha256: str, state: PreviewState | None) -> list[ImageRecord]:
        return await self._write(self._settle_preview, sha256, state)

    async def preview_entries(self, sha256: str) -> list[ImageRecord]:
        return await self._run(self._entries, sha256)
