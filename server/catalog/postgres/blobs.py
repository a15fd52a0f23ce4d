"""PostgreSQL: the derived-image queue (with its attempts), and integrity for scrub."""

from __future__ import annotations

from ..fields import BLOB_FIELDS, IMAGE_COLUMNS, blob_from_row, columns, image_from_row
from ..records import BlobRecord, Damage, ImageRecord, Owner
from . import timeline
from .connection import Conn, Connection, affected, one, rows

_BLOB_COLUMNS = columns(BLOB_FIELDS)
_PENDING = "thumbnail IS NULL AND decodable AND damage IS NULL"


class PostgresBlobs(Connection):
    async def set_thumbnail(self, sha256: str, made: bool) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute("UPDATE blobs SET thumbnail = %s WHERE sha256 = %s", (made, sha256))

        await self._write(work)

    async def get_blob(self, sha256: str) -> BlobRecord | None:
        async def work(conn: Conn) -> BlobRecord | None:
            row = await one(conn, f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE sha256 = %s", (sha256,))
            return None if row is None else blob_from_row(row)

        return await self._read(work)

    async def blobs_after(self, sha256: str, limit: int) -> list[BlobRecord]:
        async def work(conn: Conn) -> list[BlobRecord]:
            found = await rows(
                conn,
                f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE sha256 > %s ORDER BY sha256 LIMIT %s",
                (sha256, limit),
            )
            return [blob_from_row(row) for row in found]

        return await self._read(work)

    async def pending_thumbnails(self, limit: int = -1) -> list[BlobRecord]:
        async def work(conn: Conn) -> list[BlobRecord]:
            found = await rows(
                conn,
                f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE {_PENDING} ORDER BY created_at LIMIT %s",
                (None if limit < 0 else limit,),
            )
            return [blob_from_row(row) for row in found]

        return await self._read(work)

    async def count_pending_thumbnails(self) -> int:
        async def work(conn: Conn) -> int:
            row = await one(conn, f"SELECT count(*) AS n FROM blobs WHERE {_PENDING}")
            return 0 if row is None else int(row["n"])

        return await self._read(work)

    async def attempt_thumbnail(self, sha256: str) -> int:
        async def work(conn: Conn) -> int:
            row = await one(
                conn,
                "UPDATE blobs SET thumbnail_attempts = thumbnail_attempts + 1 "
                "WHERE sha256 = %s RETURNING thumbnail_attempts",
                (sha256,),
            )
            return 0 if row is None else int(row["thumbnail_attempts"])

        return await self._write_unsynced(work)

    async def settle_thumbnail(self, sha256: str, made: bool) -> list[ImageRecord]:
        async def work(conn: Conn) -> list[ImageRecord]:
            # Both sent at once; the entries are read after the update, in its transaction.
            settling = await conn.execute(
                "UPDATE blobs SET thumbnail = %s, thumbnail_attempts = 0 "
                "WHERE sha256 = %s AND thumbnail IS NULL RETURNING sha256",
                (made, sha256),
            )
            reading = await conn.execute(
                f"SELECT {IMAGE_COLUMNS} {timeline.IMAGE_FROM} "
                "WHERE e.sha256 = %s AND e.deleted_at IS NULL ORDER BY e.user_id",
                (sha256,),
            )
            if await settling.fetchone() is None:
                return []
            return [image_from_row(row) for row in await reading.fetchall()]

        return await self._write_unsynced(work)

    async def thumbnail_succeeded(self, sha256: str) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute(
                "UPDATE blobs SET thumbnail_attempts = 0 "
                "WHERE sha256 = %s AND thumbnail_attempts > 0",
                (sha256,),
            )

        await self._write_unsynced(work)

    async def blob_totals(self) -> tuple[int, int]:
        async def work(conn: Conn) -> tuple[int, int]:
            row = await one(
                conn, "SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM blobs"
            )
            assert row is not None
            return int(row["n"]), int(row["bytes"])

        return await self._read(work)

    async def owners(self, sha256: str) -> list[Owner]:
        async def work(conn: Conn) -> list[Owner]:
            found = await rows(
                conn,
                "SELECT u.name, e.filename, e.deleted_at IS NOT NULL AS trashed FROM entries e "
                "JOIN users u ON u.id = e.user_id WHERE e.sha256 = %s "
                'ORDER BY u.name COLLATE "C", e.filename COLLATE "C"',
                (sha256,),
            )
            return [Owner(row["name"], row["filename"], bool(row["trashed"])) for row in found]

        return await self._read(work)

    async def mark_damaged(self, sha256: str, damage: Damage, now: float) -> bool:
        async def work(conn: Conn) -> bool:
            await conn.execute(
                "UPDATE blobs SET damage = %s, damaged_at = %s "
                "WHERE sha256 = %s AND damage IS DISTINCT FROM %s",
                (damage, now, sha256, damage),
            )
            row = await one(conn, "SELECT 1 AS one FROM blobs WHERE sha256 = %s", (sha256,))
            return row is not None

        return await self._write(work)

    async def clear_damage(self, sha256: str) -> bool:
        async def work(conn: Conn) -> bool:
            changed = await affected(
                conn,
                "UPDATE blobs SET damage = NULL, damaged_at = NULL "
                "WHERE sha256 = %s AND damage IS NOT NULL",
                (sha256,),
            )
            return changed > 0

        return await self._write(work)
