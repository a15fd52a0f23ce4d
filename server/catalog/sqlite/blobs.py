"""SQLite: the derived-image queue (with its attempts), and integrity for scrub."""

from __future__ import annotations

from ..fields import BLOB_FIELDS, blob_from_row, columns, image_from_row
from ..records import BlobRecord, Damage, ImageRecord, Owner
from . import timeline
from .connection import Connection

_BLOB_COLUMNS = columns(BLOB_FIELDS)
_PENDING = "thumbnail IS NULL AND decodable = 1 AND damage IS NULL"


class SQLiteBlobs(Connection):
    def _set_thumbnail(self, sha256: str, made: bool) -> None:
        self._db.execute("UPDATE blobs SET thumbnail = ? WHERE sha256 = ?", (int(made), sha256))

    async def set_thumbnail(self, sha256: str, made: bool) -> None:
        await self._write(self._set_thumbnail, sha256, made)

    def _get_blob(self, sha256: str) -> BlobRecord | None:
        row = self._db.execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return None if row is None else blob_from_row(row)

    async def get_blob(self, sha256: str) -> BlobRecord | None:
        return await self._run(self._get_blob, sha256)

    def _blobs_after(self, sha256: str, limit: int) -> list[BlobRecord]:
        rows = self._db.execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE sha256 > ? ORDER BY sha256 LIMIT ?",
            (sha256, limit),
        )
        return [blob_from_row(row) for row in rows]

    async def blobs_after(self, sha256: str, limit: int) -> list[BlobRecord]:
        return await self._run(self._blobs_after, sha256, limit)

    def _pending_thumbnails(self, limit: int) -> list[BlobRecord]:
        rows = self._db.execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE {_PENDING} ORDER BY created_at LIMIT ?",
            (limit,),
        )
        return [blob_from_row(row) for row in rows]

    async def pending_thumbnails(self, limit: int = -1) -> list[BlobRecord]:
        return await self._run(self._pending_thumbnails, limit)

    def _count_pending_thumbnails(self) -> int:
        row = self._db.execute(f"SELECT count(*) AS n FROM blobs WHERE {_PENDING}").fetchone()
        return int(row["n"])

    async def count_pending_thumbnails(self) -> int:
        return await self._run(self._count_pending_thumbnails)

    def _attempt_thumbnail(self, sha256: str) -> int:
        row = self._db.execute(
            "UPDATE blobs SET thumbnail_attempts = thumbnail_attempts + 1 WHERE sha256 = ? "
            "RETURNING thumbnail_attempts",
            (sha256,),
        ).fetchone()
        return 0 if row is None else int(row["thumbnail_attempts"])

    async def attempt_thumbnail(self, sha256: str) -> int:
        return await self._write_unsynced(self._attempt_thumbnail, sha256)

    def _settle_thumbnail(self, sha256: str, made: bool) -> list[ImageRecord]:
        settled = self._db.execute(
            "UPDATE blobs SET thumbnail = ?, thumbnail_attempts = 0 "
            "WHERE sha256 = ? AND thumbnail IS NULL RETURNING sha256",
            (int(made), sha256),
        ).fetchone()
        if settled is None:
            return []
        rows = self._db.execute(
            f"SELECT {timeline.IMAGE_COLUMNS} {timeline.IMAGE_FROM} "
            "WHERE e.sha256 = ? AND e.deleted_at IS NULL ORDER BY e.user_id",
            (sha256,),
        )
        return [image_from_row(row) for row in rows]

    async def settle_thumbnail(self, sha256: str, made: bool) -> list[ImageRecord]:
        return await self._write_unsynced(self._settle_thumbnail, sha256, made)

    def _thumbnail_succeeded(self, sha256: str) -> None:
        self._db.execute(
            "UPDATE blobs SET thumbnail_attempts = 0 WHERE sha256 = ? AND thumbnail_attempts > 0",
            (sha256,),
        )

    async def thumbnail_succeeded(self, sha256: str) -> None:
        await self._write_unsynced(self._thumbnail_succeeded, sha256)

    def _blob_totals(self) -> tuple[int, int]:
        row = self._db.execute("SELECT count(*) AS n, total(size) AS bytes FROM blobs").fetchone()
        return int(row["n"]), int(row["bytes"])

    async def blob_totals(self) -> tuple[int, int]:
        return await self._run(self._blob_totals)

    def _owners(self, sha256: str) -> list[Owner]:
        rows = self._db.execute(
            "SELECT u.name, e.filename, e.deleted_at IS NOT NULL AS trashed FROM entries e "
            "JOIN users u ON u.id = e.user_id WHERE e.sha256 = ? ORDER BY u.name, e.filename",
            (sha256,),
        )
        return [Owner(row["name"], row["filename"], bool(row["trashed"])) for row in rows]

    async def owners(self, sha256: str) -> list[Owner]:
        return await self._run(self._owners, sha256)

    def _mark_damaged(self, sha256: str, damage: Damage, now: float) -> bool:
        self._db.execute(
            "UPDATE blobs SET damage = ?, damaged_at = ? WHERE sha256 = ? AND damage IS NOT ?",
            (damage, now, sha256, damage),
        )
        row = self._db.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        return row is not None

    async def mark_damaged(self, sha256: str, damage: Damage, now: float) -> bool:
        return await self._write(self._mark_damaged, sha256, damage, now)

    def _clear_damage(self, sha256: str) -> bool:
        cursor = self._db.execute(
            "UPDATE blobs SET damage = NULL, damaged_at = NULL "
            "WHERE sha256 = ? AND damage IS NOT NULL",
            (sha256,),
        )
        return cursor.rowcount > 0

    async def clear_damage(self, sha256: str) -> bool:
        return await self._write(self._clear_damage, sha256)
