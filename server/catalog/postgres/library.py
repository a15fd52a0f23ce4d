"""PostgreSQL: blobs and library entries, the trash, and what gc asks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..fields import BLOB_FIELDS, blob_values, columns, image_from_row
from ..records import BlobRecord, HashField, ImageRecord, Position, sort_time
from . import timeline
from .connection import Conn, Connection, affected, one, rows

ADD_TRIES = 5

# The blob once; the same bytes sent again teach an old row its EXIF, mend damage (they
# were just hashed as they came) and clear a mark of being unreferenced. ON CONFLICT DO
# UPDATE locks the row even when its WHERE leaves it as it is: gc's conditional delete of
# it waits for this transaction, then finds the row unmarked and leaves it.
_UPSERT_BLOB = (
    f"INSERT INTO blobs ({columns(BLOB_FIELDS)}, created_at) "
    f"VALUES ({', '.join(['%s'] * (len(BLOB_FIELDS) + 1))}) "
    "ON CONFLICT (sha256) DO UPDATE SET exif = coalesce(blobs.exif, excluded.exif), "
    "damage = NULL, damaged_at = NULL, unreferenced_at = NULL "
    "WHERE (blobs.exif IS NULL AND excluded.exif IS NOT NULL) OR blobs.damage IS NOT NULL "
    "OR blobs.unreferenced_at IS NOT NULL"
)


# The blob (once), the user's entry (once; back from the trash if it was there), in one
# statement. An entry already in the library counts as had. Every part sees the same
# snapshot, so at most one of inserting and restoring the entry does anything.
_ADD_IMAGE = (
    f"WITH blob AS ({_UPSERT_BLOB} RETURNING sha256), "
    "entry AS (INSERT INTO entries (user_id, sha256, md5, filename, uploaded_at, taken_ts) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, sha256) DO NOTHING RETURNING sha256), "
    "restored AS (UPDATE entries SET deleted_at = NULL "
    "WHERE user_id = %s AND sha256 = %s AND deleted_at IS NOT NULL RETURNING sha256) "
    "SELECT (SELECT count(*) FROM entry) AS inserted, (SELECT count(*) FROM restored) AS restored"
)


async def get(conn: Conn, user_id: int, sha256: str, trashed: bool) -> ImageRecord | None:
    row = await one(conn, timeline.get_sql(trashed), (user_id, sha256))
    return None if row is None else image_from_row(row)


async def add(
    conn: Conn, user_id: int, blob: BlobRecord, filename: str, now: float
) -> tuple[ImageRecord, bool]:
    entry = (user_id, blob.sha256, blob.md5, filename, now, sort_time(blob.taken_at, now))
    # One statement and the read of its result, sent together (the pipeline):
    # the read sees what the statement wrote, as a later statement of the
    # transaction does.
    for _ in range(ADD_TRIES):
        added = await conn.execute(
            _ADD_IMAGE, [*blob_values(blob, truth=bool), now, *entry, user_id, blob.sha256]
        )
        found = await conn.execute(timeline.get_sql(False), (user_id, blob.sha256))
        counts = await added.fetchone()
        row = await found.fetchone()
        assert counts is not None
        if row is not None:
            had = not counts["inserted"] and not counts["restored"]
            return image_from_row(row), had
        # The entry the insert met was in the trash and purged by another transaction
        # before the restore reached it: neither happened. Again, on a snapshot taken
        # after that purge, the insert goes in.
    raise RuntimeError(f"entry of {blob.sha256} for user {user_id} kept vanishing")


async def mark(conn: Conn, sha256s: list[str], now: float) -> None:
    """Mark the blobs of entries just removed that no entry refers to any more.

    A statement after the removal: one in the same statement would see the entries as
    they were before it.
    """
    if sha256s:
        await conn.execute(
            "UPDATE blobs SET unreferenced_at = %s WHERE sha256 = ANY(%s) "
            "AND unreferenced_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256)",
            (now, sha256s),
        )


class PostgresLibrary(Connection):
    async def get_image(
        self, user_id: int, sha256: str, *, trashed: bool = False
    ) -> ImageRecord | None:
        return await self._read(lambda conn: get(conn, user_id, sha256, trashed))

    async def add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        return await self._write(lambda conn: add(conn, user_id, blob, filename, now))

    async def add_images(
        self, user_id: int, items: Sequence[tuple[BlobRecord, str]], now: float
    ) -> list[tuple[ImageRecord, bool]]:
        wanted = list(items)

        async def work(conn: Conn) -> list[tuple[ImageRecord, bool]]:
            return [await add(conn, user_id, blob, filename, now) for blob, filename in wanted]

        return await self._write(work)

    async def find_by_md5(self, user_id: int, md5: str) -> ImageRecord | None:
        async def work(conn: Conn) -> ImageRecord | None:
            row = await one(conn, timeline.FIND_BY_MD5_SQL, (user_id, md5))
            return None if row is None else image_from_row(row)

        return await self._read(work)

    async def list_images(
        self, user_id: int, limit: int, after: Position | None, *, trashed: bool = False
    ) -> list[ImageRecord]:
        sql = timeline.page_sql(trashed, after is not None)
        params: list[Any] = [user_id, *(after or ()), limit]

        async def work(conn: Conn) -> list[ImageRecord]:
            return [image_from_row(row) for row in await rows(conn, sql, params)]

        return await self._read(work)

    async def months(self, user_id: int) -> list[tuple[str, int]]:
        async def work(conn: Conn) -> list[tuple[str, int]]:
            found = await rows(conn, timeline.MONTHS_SQL, {"user": user_id})
            return [(str(row["month"]), int(row["count"])) for row in found]

        return await self._read(work)

    async def present(self, user_id: int, field: HashField, values: Iterable[str]) -> set[str]:
        wanted = sorted(set(values))

        async def work(conn: Conn) -> set[str]:
            found = await rows(conn, timeline.PRESENT_SQL[field], (user_id, wanted))
            return {row[field] for row in found}

        return await self._read(work)

    async def query_plans(self) -> dict[str, list[str]]:
        """How PostgreSQL plans the timeline's queries on this catalog (timeline.plans)."""
        return await self._read(timeline.plans)

    async def trash(self, user_id: int, sha256: str, now: float) -> ImageRecord | None:
        async def work(conn: Conn) -> ImageRecord | None:
            await conn.execute(
                "UPDATE entries SET deleted_at = %s "
                "WHERE user_id = %s AND sha256 = %s AND deleted_at IS NULL",
                (now, user_id, sha256),
            )
            return await get(conn, user_id, sha256, True)

        return await self._write(work)

    async def restore(self, user_id: int, sha256: str) -> ImageRecord | None:
        async def work(conn: Conn) -> ImageRecord | None:
            await conn.execute(
                "UPDATE entries SET deleted_at = NULL "
                "WHERE user_id = %s AND sha256 = %s AND deleted_at IS NOT NULL",
                (user_id, sha256),
            )
            return await get(conn, user_id, sha256, False)

        return await self._write(work)

    async def purge(self, user_id: int, sha256: str, now: float) -> bool:
        async def work(conn: Conn) -> bool:
            gone = await rows(
                conn,
                "DELETE FROM entries WHERE user_id = %s AND sha256 = %s AND deleted_at IS NOT NULL "
                "RETURNING sha256",
                (user_id, sha256),
            )
            await mark(conn, [row["sha256"] for row in gone], now)
            return bool(gone)

        return await self._write(work)

    async def expire_trash(self, deleted_before: float, now: float) -> int:
        async def work(conn: Conn) -> int:
            gone = await rows(
                conn,
                "DELETE FROM entries WHERE deleted_at IS NOT NULL AND deleted_at < %s "
                "RETURNING sha256",
                (deleted_before,),
            )
            await mark(conn, sorted({row["sha256"] for row in gone}), now)
            return len(gone)

        return await self._write(work)

    async def is_referenced(self, sha256: str) -> bool:
        async def work(conn: Conn) -> bool:
            row = await one(
                conn, "SELECT 1 AS one FROM entries WHERE sha256 = %s LIMIT 1", (sha256,)
            )
            return row is not None

        return await self._read(work)

    async def mark_unreferenced_blobs(self, now: float) -> int:
        async def work(conn: Conn) -> int:
            await conn.execute(
                "UPDATE blobs SET unreferenced_at = NULL WHERE unreferenced_at IS NOT NULL "
                "AND EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256)"
            )
            return await affected(
                conn,
                "UPDATE blobs SET unreferenced_at = %s WHERE unreferenced_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256)",
                (now,),
            )

        return await self._write(work)

    async def drop_unreferenced_blobs(self, cutoff: float, limit: int = 500) -> list[str]:
        async def work(conn: Conn) -> list[str]:
            found = await rows(
                conn,
                "DELETE FROM blobs WHERE sha256 IN (SELECT sha256 FROM blobs "
                "WHERE unreferenced_at <= %s ORDER BY unreferenced_at LIMIT %s) "
                "AND unreferenced_at <= %s "
                "AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256) "
                "RETURNING sha256",
                (cutoff, limit, cutoff),
            )
            return sorted(row["sha256"] for row in found)

        return await self._write(work)

    async def known_blobs(self) -> set[str]:
        async def work(conn: Conn) -> set[str]:
            return {row["sha256"] for row in await rows(conn, "SELECT sha256 FROM blobs")}

        return await self._read(work)
