"""PostgreSQL: videos' playable previews still to come, and the attempts at each."""

from __future__ import annotations

from ..fields import BLOB_FIELDS, IMAGE_COLUMNS, blob_from_row, columns, image_from_row
from ..records import BlobRecord, ImageRecord, PreviewState
from . import timeline
from .connection import Conn, Connection, one, rows

_BLOB_COLUMNS = columns(BLOB_FIELDS)
_PENDING = (
    "kind = 'video' AND preview IS NULL AND decodable AND damage IS NULL"
    " AND unreferenced_at IS NULL"  # a purged video's is not made for gc to remove
)
_ENTRIES = (
    f"SELECT {IMAGE_COLUMNS} {timeline.IMAGE_FROM} "
    "WHERE e.sha256 = %s AND e.deleted_at IS NULL ORDER BY e.user_id"
)


class PostgresPreviews(Connection):
    async def pending_previews(self, limit: int) -> list[BlobRecord]:
        async def work(conn: Conn) -> list[BlobRecord]:
            found = await rows(
                conn,
                f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE {_PENDING} ORDER BY created_at LIMIT %s",
                (limit,),
            )
            return [blob_from_row(row) for row in found]

        return await self._read(work)

    async def attempt_preview(self, sha256: str) -> int:
        async def work(conn: Conn) -> int:
            row = await one(
                conn,
                "UPDATE blobs SET preview_attempts = preview_attempts + 1 "
                "WHERE sha256 = %s RETURNING preview_attempts",
                (sha256,),
            )
            return 0 if row is None else int(row["preview_attempts"])

        return await self._write(work)

    async def settle_preview(self, sha256: str, state: PreviewState | None) -> list[ImageRecord]:
        async def work(conn: Conn) -> list[ImageRecord]:
            await conn.execute(
                "UPDATE blobs SET preview = %s, preview_attempts = 0 WHERE sha256 = %s",
                (state, sha256),
            )
            return [image_from_row(row) for row in await rows(conn, _ENTRIES, (sha256,))]

        return await self._write(work)

    async def preview_entries(self, sha256: str) -> list[ImageRecord]:
        async def work(conn: Conn) -> list[ImageRecord]:
            return [image_from_row(row) for row in await rows(conn, _ENTRIES, (sha256,))]

        return await self._read(work)
