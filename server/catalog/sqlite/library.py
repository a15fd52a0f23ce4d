"""SQLite: blobs and library entries, the trash, and what gc asks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..fields import BLOB_FIELDS, blob_values, columns, image_from_row
from ..records import BlobRecord, HashField, ImageRecord, Position, sort_time
from . import timeline
from .connection import Connection

_INSERT_BLOB = (
    f"INSERT INTO blobs ({columns(BLOB_FIELDS)}, created_at) "
    f"VALUES ({', '.join('?' * (len(BLOB_FIELDS) + 1))}) ON CONFLICT (sha256) DO NOTHING"
)


class SQLiteLibrary(Connection):
    def _get(self, user_id: int, sha256: str, trashed: bool) -> ImageRecord | None:
        row = self._db.execute(timeline.get_sql(trashed), (user_id, sha256)).fetchone()
        return None if row is None else image_from_row(row)

    async def get_image(
        self, user_id: int, sha256: str, *, trashed: bool = False
    ) -> ImageRecord | None:
        return await self._run(self._get, user_id, sha256, trashed)

    def _add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        self._db.execute(_INSERT_BLOB, [*blob_values(blob, truth=int), now])
        # Blobs stored before EXIF was recorded learn it from the same bytes sent again.
        self._db.execute(
            "UPDATE blobs SET exif = ? WHERE sha256 = ? AND exif IS NULL",
            (None if blob.exif is None else int(blob.exif), blob.sha256),
        )
        # The bytes were just placed again, hashed as they came: whatever was wrong is mended.
        self._db.execute(
            "UPDATE blobs SET damage = NULL, damaged_at = NULL "
            "WHERE sha256 = ? AND damage IS NOT NULL",
            (blob.sha256,),
        )
        # Referred to again: gc must not take it (nor its file).
        self._db.execute(
            "UPDATE blobs SET unreferenced_at = NULL "
            "WHERE sha256 = ? AND unreferenced_at IS NOT NULL",
            (blob.sha256,),
        )
        existing = self._db.execute(
            "SELECT deleted_at FROM entries WHERE user_id = ? AND sha256 = ?",
            (user_id, blob.sha256),
        ).fetchone()
        if existing is None:
            self._db.execute(
                "INSERT INTO entries (user_id, sha256, md5, filename, uploaded_at, taken_ts) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, blob.sha256, blob.md5, filename, now, sort_time(blob.taken_at, now)),
            )
        elif existing["deleted_at"] is not None:
            self._db.execute(
                "UPDATE entries SET deleted_at = NULL WHERE user_id = ? AND sha256 = ?",
                (user_id, blob.sha256),
            )
        record = self._get(user_id, blob.sha256, False)
        assert record is not None
        return record, existing is not None and existing["deleted_at"] is None

    async def add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        return await self._write(self._add_image, user_id, blob, filename, now)

    def _add_images(
        self, user_id: int, items: Sequence[tuple[BlobRecord, str]], now: float
    ) -> list[tuple[ImageRecord, bool]]:
        return [self._add_image(user_id, blob, filename, now) for blob, filename in items]

    async def add_images(
        self, user_id: int, items: Sequence[tuple[BlobRecord, str]], now: float
    ) -> list[tuple[ImageRecord, bool]]:
        return await self._write(self._add_images, user_id, list(items), now)

    def _find_by_md5(self, user_id: int, md5: str) -> ImageRecord | None:
        row = self._db.execute(timeline.FIND_BY_MD5_SQL, (user_id, md5)).fetchone()
        return None if row is None else image_from_row(row)

    async def find_by_md5(self, user_id: int, md5: str) -> ImageRecord | None:
        return await self._run(self._find_by_md5, user_id, md5)

    def _list(
        self, user_id: int, limit: int, after: Position | None, trashed: bool
    ) -> list[ImageRecord]:
        sql = timeline.page_sql(trashed, after is not None)
        params: list[Any] = [user_id, *(after or ()), limit]
        return [image_from_row(row) for row in self._db.execute(sql, params)]

    async def list_images(
        self, user_id: int, limit: int, after: Position | None, *, trashed: bool = False
    ) -> list[ImageRecord]:
        return await self._run(self._list, user_id, limit, after, trashed)

    def _months(self, user_id: int) -> list[tuple[str, int]]:
        found = self._db.execute(timeline.MONTHS_SQL, (user_id,))
        return [(str(row["month"]), int(row["count"])) for row in found]

    async def months(self, user_id: int) -> list[tuple[str, int]]:
        return await self._run(self._months, user_id)

    def _present(self, user_id: int, field: HashField, values: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(values), 500):
            batch = values[start : start + 500]
            rows = self._db.execute(
                timeline.present_sql(field, len(batch)),
                timeline.present_params(field, user_id, batch),
            )
            found.update(row[field] for row in rows)
        return found

    async def present(self, user_id: int, field: HashField, values: Iterable[str]) -> set[str]:
        return await self._run(self._present, user_id, field, list(values))

    async def query_plans(self) -> dict[str, list[str]]:
        """How SQLite plans the timeline's queries on this catalog (timeline.plans)."""
        return await self._run(timeline.plans, self._db)

    def _trash(self, user_id: int, sha256: str, now: float) -> ImageRecord | None:
        self._db.execute(
            "UPDATE entries SET deleted_at = ? "
            "WHERE user_id = ? AND sha256 = ? AND deleted_at IS NULL",
            (now, user_id, sha256),
        )
        return self._get(user_id, sha256, True)

    async def trash(self, user_id: int, sha256: str, now: float) -> ImageRecord | None:
        return await self._write(self._trash, user_id, sha256, now)

    def _restore(self, user_id: int, sha256: str) -> ImageRecord | None:
        self._db.execute(
            "UPDATE entries SET deleted_at = NULL "
            "WHERE user_id = ? AND sha256 = ? AND deleted_at IS NOT NULL",
            (user_id, sha256),
        )
        return self._get(user_id, sha256, False)

    async def restore(self, user_id: int, sha256: str) -> ImageRecord | None:
        return await self._write(self._restore, user_id, sha256)

    def _mark(self, sha256s: Iterable[str], now: float) -> None:
        self._db.executemany(
            "UPDATE blobs SET unreferenced_at = ? WHERE sha256 = ? AND unreferenced_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256)",
            [(now, sha256) for sha256 in sha256s],
        )

    def _purge(self, user_id: int, sha256: str, now: float) -> bool:
        gone = self._db.execute(
            "DELETE FROM entries WHERE user_id = ? AND sha256 = ? AND deleted_at IS NOT NULL "
            "RETURNING sha256",
            (user_id, sha256),
        ).fetchall()
        self._mark((row["sha256"] for row in gone), now)
        return bool(gone)

    async def purge(self, user_id: int, sha256: str, now: float) -> bool:
        return await self._write(self._purge, user_id, sha256, now)

    def _expire_trash(self, deleted_before: float, now: float) -> int:
        gone = self._db.execute(
            "DELETE FROM entries WHERE deleted_at IS NOT NULL AND deleted_at < ? RETURNING sha256",
            (deleted_before,),
        ).fetchall()
        self._mark({row["sha256"] for row in gone}, now)
        return len(gone)

    async def expire_trash(self, deleted_before: float, now: float) -> int:
        return await self._write(self._expire_trash, deleted_before, now)

    def _is_referenced(self, sha256: str) -> bool:
        row = self._db.execute("SELECT 1 FROM entries WHERE sha256 = ? LIMIT 1", (sha256,))
        return row.fetchone() is not None

    async def is_referenced(self, sha256: str) -> bool:
        return await self._run(self._is_referenced, sha256)

    def _mark_unreferenced(self, now: float) -> int:
        self._db.execute(
            "UPDATE blobs SET unreferenced_at = NULL WHERE unreferenced_at IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256)"
        )
        cursor = self._db.execute(
            "UPDATE blobs SET unreferenced_at = ? WHERE unreferenced_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256)",
            (now,),
        )
        return cursor.rowcount

    async def mark_unreferenced_blobs(self, now: float) -> int:
        return await self._write(self._mark_unreferenced, now)

    def _drop_unreferenced(self, cutoff: float, limit: int) -> list[str]:
        rows = self._db.execute(
            "DELETE FROM blobs WHERE sha256 IN (SELECT sha256 FROM blobs "
            "WHERE unreferenced_at <= ? ORDER BY unreferenced_at LIMIT ?) "
            "AND unreferenced_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256) "
            "RETURNING sha256",
            (cutoff, limit, cutoff),
        )
        return sorted(row["sha256"] for row in rows)

    async def drop_unreferenced_blobs(self, cutoff: float, limit: int = 500) -> list[str]:
        return await self._write(self._drop_unreferenced, cutoff, limit)

    def _known(self) -> set[str]:
        return {row["sha256"] for row in self._db.execute("SELECT sha256 FROM blobs")}

    async def known_blobs(self) -> set[str]:
        return await self._run(self._known)
