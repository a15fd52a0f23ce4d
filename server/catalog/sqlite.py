"""The embedded catalog: one SQLite file in WAL mode, used from one thread.

Migrations are numbered SQL scripts applied in order at start-up; the schema
version lives in `PRAGMA user_version`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import (
    BlobRecord,
    CatalogFull,
    CatalogTooNew,
    Damage,
    Device,
    HashField,
    ImageRecord,
    OpenUploads,
    Owner,
    Position,
    UploadRecord,
    User,
    iso,
    sort_time,
)
from . import sqlite_timeline as timeline
from .use import CatalogUse

T = TypeVar("T")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        token_hash TEXT NOT NULL UNIQUE,
        device TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL,
        revoked_at REAL
    );
    CREATE TABLE pairing_codes (
        code_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires_at REAL NOT NULL,
        used_at REAL
    );
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        md5 TEXT NOT NULL,
        size INTEGER NOT NULL,
        format TEXT NOT NULL,
        mime TEXT NOT NULL,
        width INTEGER,
        height INTEGER,
        orientation INTEGER,
        taken_at TEXT,
        camera_make TEXT,
        camera_model TEXT,
        has_gps INTEGER NOT NULL,
        decodable INTEGER NOT NULL,
        thumbnail INTEGER,
        created_at REAL NOT NULL
    );
    CREATE INDEX blobs_md5 ON blobs(md5);
    CREATE TABLE entries (
        user_id INTEGER NOT NULL REFERENCES users(id),
        sha256 TEXT NOT NULL REFERENCES blobs(sha256),
        filename TEXT NOT NULL,
        uploaded_at REAL NOT NULL,
        taken_ts REAL NOT NULL,
        deleted_at REAL,
        PRIMARY KEY (user_id, sha256)
    );
    CREATE INDEX entries_library ON entries(user_id, taken_ts DESC, sha256 DESC)
        WHERE deleted_at IS NULL;
    CREATE INDEX entries_trash ON entries(user_id, deleted_at DESC, sha256 DESC)
        WHERE deleted_at IS NOT NULL;
    CREATE INDEX entries_sha256 ON entries(sha256);
    """,
    # 2: tus uploads. No foreign key to blobs: a finished upload's image is held by
    # its library entry, and the row must not keep a purged blob from being dropped.
    """
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        length INTEGER NOT NULL,
        "offset" INTEGER NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        image_sha256 TEXT,
        duplicate INTEGER
    );
    CREATE INDEX uploads_expires_at ON uploads(expires_at);
    """,
    # 3: accounts. A WeChat login maps its openid to one user; devices are listed by user.
    """
    ALTER TABLE users ADD COLUMN wechat_openid TEXT;
    CREATE UNIQUE INDEX users_wechat_openid ON users(wechat_openid)
        WHERE wechat_openid IS NOT NULL;
    CREATE INDEX tokens_user ON tokens(user_id);
    """,
    # 4: damage found by scrub: "missing" or "mismatch", and when it was found.
    """
    ALTER TABLE blobs ADD COLUMN damage TEXT;
    ALTER TABLE blobs ADD COLUMN damaged_at REAL;
    """,
    # 5: the timeline from indexes alone where it can be (sqlite_timeline): a page's
    # entries from the library index, which now holds every column of them; whether
    # an entry is in the trash, and whether its blob is damaged, from partial indexes
    # of those few rows; and a blob's sha256 from its md5 without its row.
    """
    DROP INDEX entries_library;
    CREATE INDEX entries_library
        ON entries(user_id, taken_ts DESC, sha256 DESC, filename, uploaded_at, deleted_at)
        WHERE deleted_at IS NULL;
    CREATE INDEX entries_trashed ON entries(user_id, sha256) WHERE deleted_at IS NOT NULL;
    CREATE INDEX blobs_damaged ON blobs(sha256) WHERE damage IS NOT NULL;
    DROP INDEX blobs_md5;
    CREATE INDEX blobs_md5 ON blobs(md5, sha256);
    """,
    # 6: whether the file carried any EXIF (phones may hand over a re-encoded copy
    # without it); NULL for blobs stored before this was recorded.
    """
    ALTER TABLE blobs ADD COLUMN exif INTEGER;
    """,
    # 7: the derived-image work queue. A decode is counted before it starts, so one that
    # kills its worker (or the server) is not retried for ever; pending work is found by
    # a partial index however large the library.
    """
    ALTER TABLE blobs ADD COLUMN thumbnail_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX blobs_thumbnail_pending ON blobs(created_at)
        WHERE thumbnail IS NULL AND decodable = 1 AND damage IS NULL;
    """,
    # 8: budgets. Wrong pairing guesses each live code has outlived; a user's open
    # uploads are counted at every creation.
    """
    ALTER TABLE pairing_codes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX uploads_user ON uploads(user_id, expires_at);
    """,
]

# Freed pages handed back to the file system per call, so that reclaiming space
# never holds the one catalog thread for long.
RECLAIM_PAGES = 2048

_BLOB_COLUMNS = """
    sha256, md5, size, format, mime, width, height, orientation,
    taken_at, camera_make, camera_model, has_gps, decodable, thumbnail, damage, exif
"""
_UPLOAD_COLUMNS = (
    'id, user_id, length, "offset", metadata, created_at, expires_at, image_sha256, duplicate'
)

LAST_SEEN_RESOLUTION = 60.0

_DEVICE_COLUMNS = "t.id, t.user_id, t.device, t.created_at, t.last_seen_at"


def _device(row: Sequence[Any]) -> Device:
    return Device(row[0], row[1], row[2], iso(row[3]), None if row[4] is None else iso(row[4]))


def _blob(row: sqlite3.Row, damage: Damage | None, exif: int | None) -> BlobRecord:
    return BlobRecord(
        sha256=row[0],
        md5=row[1],
        size=row[2],
        format=row[3],
        mime=row[4],
        width=row[5],
        height=row[6],
        orientation=row[7],
        taken_at=row[8],
        camera_make=row[9],
        camera_model=row[10],
        has_gps=bool(row[11]),
        decodable=bool(row[12]),
        thumbnail=None if row[13] is None else bool(row[13]),
        damage=damage,
        exif=None if exif is None else bool(exif),
    )


def _image(row: sqlite3.Row) -> ImageRecord:
    return ImageRecord(
        blob=_blob(row, row[19], row[20]),
        user_id=row[14],
        filename=row[15],
        uploaded_at=iso(row[16]),
        taken_ts=row[17],
        deleted_at=None if row[18] is None else iso(row[18]),
        deleted_ts=row[18],
    )


def _upload(row: sqlite3.Row) -> UploadRecord:
    return UploadRecord(
        id=row[0],
        user_id=row[1],
        length=row[2],
        offset=row[3],
        metadata=json.loads(row[4]),
        created_at=row[5],
        expires_at=row[6],
        image_sha256=row[7],
        duplicate=None if row[8] is None else bool(row[8]),
    )


class SQLiteCatalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
        self._calls = 0  # queries submitted and not yet answered
        try:
            self._db: sqlite3.Connection = self._executor.submit(self._connect).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            self._incremental_vacuum(db)
            db.execute("PRAGMA journal_mode = WAL")
            # An acknowledged upload must survive power loss: FULL syncs the WAL on commit.
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _incremental_vacuum(db: sqlite3.Connection) -> None:
        """Free pages can be handed back (`reclaim_space`): a new catalog is made so,
        an older one is rebuilt once (VACUUM) to become so."""
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
            return
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if db.execute("PRAGMA page_count").fetchone()[0] > 0:
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        while True:
            # Read the version under the write lock: another process may be migrating.
            db.execute("BEGIN IMMEDIATE")
            try:
                version: int = db.execute("PRAGMA user_version").fetchone()[0]
                if version > len(MIGRATIONS):
                    raise CatalogTooNew(
                        f"the catalog is at schema {version}, newer than this server knows "
                        f"({len(MIGRATIONS)}): upgrade Tubei"
                    )
                if version == len(MIGRATIONS):
                    db.execute("COMMIT")
                    return
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        self._calls += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise CatalogFull(str(error)) from error
            raise
        finally:
            self._calls -= 1

    def use(self) -> CatalogUse:
        """One connection on one thread: one query runs, the others queue for it."""
        return CatalogUse(size=1, in_use=min(self._calls, 1), waiting=max(self._calls - 1, 0))

    def _transaction(self, fn: Callable[..., T], *args: Any) -> T:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(*args)
            self._db.execute("COMMIT")
        except BaseException:
            # A full disk may have rolled the transaction back already, or failed COMMIT.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return result

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(self._transaction, fn, *args)

    def _unsynced_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            return self._transaction(fn, *args)
        finally:
            self._db.execute("PRAGMA synchronous = FULL")

    async def _write_unsynced(self, fn: Callable[..., T], *args: Any) -> T:
        """A write that survives the process dying but may be lost with the power.

        For what can be done again (derived images and their attempts): no fsync that
        an upload's acknowledgement would queue behind.
        """
        return await self._run(self._unsynced_transaction, fn, *args)

    async def close(self) -> None:
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)

    def close_now(self) -> None:
        self._executor.submit(self._db.close).result()
        self._executor.shutdown(wait=True)

    # people and devices ------------------------------------------------------

    def _ensure_user(self, name: str) -> User:
        self._db.execute(
            "INSERT INTO users (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (name, time.time()),
        )
        row = self._db.execute("SELECT id, name FROM users WHERE name = ?", (name,)).fetchone()
        return User(row[0], row[1])

    async def ensure_user(self, name: str) -> User:
        return await self._write(self._ensure_user, name)

    def _add_token(self, user_id: int, token_hash: str, device: str) -> Device:
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO tokens (user_id, token_hash, device, created_at) VALUES (?, ?, ?, ?)",
            (user_id, token_hash, device, now),
        )
        assert cursor.lastrowid is not None
        return Device(cursor.lastrowid, user_id, device, iso(now), None)

    async def add_token(self, user_id: int, token_hash: str, device: str) -> Device:
        return await self._write(self._add_token, user_id, token_hash, device)

    def _user_for_token(self, token_hash: str) -> tuple[User, Device] | None:
        row = self._db.execute(
            "SELECT u.id, u.name, t.id, t.device, t.created_at, t.last_seen_at "
            "FROM tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = ? AND t.revoked_at IS NULL",
            (token_hash,),
        ).fetchone()
        if row is None:
            return None
        now = time.time()
        if row[5] is None or now - row[5] > LAST_SEEN_RESOLUTION:
            # Only a note: a full disk must not turn every request away.
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.execute("UPDATE tokens SET last_seen_at = ? WHERE id = ?", (now, row[2]))
        device = Device(row[2], row[0], row[3], iso(row[4]), iso(now))
        return User(row[0], row[1]), device

    async def user_for_token(self, token_hash: str) -> tuple[User, Device] | None:
        return await self._run(self._user_for_token, token_hash)

    def _add_pairing_code(self, code_hash: str, user_id: int, expires_at: float) -> bool:
        self._db.execute(
            "DELETE FROM pairing_codes WHERE expires_at < ? OR used_at IS NOT NULL",
            (time.time(),),
        )
        cursor = self._db.execute(
            "INSERT INTO pairing_codes (code_hash, user_id, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (code_hash) DO NOTHING",
            (code_hash, user_id, expires_at),
        )
        return cursor.rowcount == 1

    async def add_pairing_code(self, code_hash: str, user_id: int, expires_at: float) -> bool:
        return await self._write(self._add_pairing_code, code_hash, user_id, expires_at)

    def _redeem_pairing_code(self, code_hash: str, now: float) -> User | None:
        row = self._db.execute(
            "UPDATE pairing_codes SET used_at = ? "
            "WHERE code_hash = ? AND used_at IS NULL AND expires_at >= ? RETURNING user_id",
            (now, code_hash, now),
        ).fetchone()
        if row is None:
            return None
        user = self._db.execute("SELECT id, name FROM users WHERE id = ?", (row[0],)).fetchone()
        return User(user[0], user[1])

    async def redeem_pairing_code(self, code_hash: str, now: float) -> User | None:
        return await self._write(self._redeem_pairing_code, code_hash, now)

    def _pairing_guess_failed(self, now: float, limit: int) -> int:
        self._db.execute(
            "UPDATE pairing_codes SET failures = failures + 1 "
            "WHERE used_at IS NULL AND expires_at >= ?",
            (now,),
        )
        cursor = self._db.execute(
            "DELETE FROM pairing_codes WHERE used_at IS NULL AND failures >= ?", (limit,)
        )
        return cursor.rowcount

    async def pairing_guess_failed(self, now: float, limit: int) -> int:
        return await self._write(self._pairing_guess_failed, now, limit)

    def _find_user(self, name: str) -> User | None:
        row = self._db.execute("SELECT id, name FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else User(row[0], row[1])

    async def find_user(self, name: str) -> User | None:
        return await self._run(self._find_user, name)

    def _wechat_user(self, openid: str, names: Sequence[str]) -> User:
        row = self._db.execute(
            "SELECT id, name FROM users WHERE wechat_openid = ?", (openid,)
        ).fetchone()
        if row is not None:
            return User(row[0], row[1])
        for name in names:
            cursor = self._db.execute(
                "INSERT INTO users (name, created_at, wechat_openid) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (name, time.time(), openid),
            )
            if cursor.rowcount == 1:
                assert cursor.lastrowid is not None
                return User(cursor.lastrowid, name)
        raise ValueError(f"all {len(names)} names offered for a new WeChat user are taken")

    async def wechat_user(self, openid: str, names: Sequence[str]) -> User:
        return await self._write(self._wechat_user, openid, list(names))

    def _devices(self, user_id: int | None) -> list[tuple[User, Device]]:
        sql = (
            f"SELECT u.name, {_DEVICE_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.revoked_at IS NULL"
        )
        params: list[Any] = []
        if user_id is not None:
            sql += " AND t.user_id = ?"
            params.append(user_id)
        rows = self._db.execute(sql + " ORDER BY t.id", params)
        return [(User(row[2], row[0]), _device(row[1:])) for row in rows]

    async def devices(self, user_id: int | None = None) -> list[tuple[User, Device]]:
        return await self._run(self._devices, user_id)

    def _revoke_device(self, device_id: int, user_id: int | None, now: float) -> Device | None:
        sql = "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        params: list[Any] = [now, device_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        returning = _DEVICE_COLUMNS.replace("t.", "")
        row = self._db.execute(f"{sql} RETURNING {returning}", params).fetchone()
        return None if row is None else _device(row)

    async def revoke_device(self, device_id: int, user_id: int | None, now: float) -> Device | None:
        return await self._write(self._revoke_device, device_id, user_id, now)

    def _revoked_devices(self, device_ids: list[int]) -> list[Device]:
        found: list[Device] = []
        for start in range(0, len(device_ids), 500):
            batch = device_ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM tokens t "
                f"WHERE t.revoked_at IS NOT NULL AND t.id IN ({marks}) ORDER BY t.id",
                batch,
            )
            found.extend(_device(row) for row in rows)
        return found

    async def revoked_devices(self, device_ids: Iterable[int]) -> list[Device]:
        return await self._run(self._revoked_devices, sorted(set(device_ids)))

    # the library -------------------------------------------------------------

    def _get(self, user_id: int, sha256: str, trashed: bool) -> ImageRecord | None:
        row = self._db.execute(timeline.get_sql(trashed), (user_id, sha256)).fetchone()
        return None if row is None else _image(row)

    async def get_image(
        self, user_id: int, sha256: str, *, trashed: bool = False
    ) -> ImageRecord | None:
        return await self._run(self._get, user_id, sha256, trashed)

    def _add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        self._db.execute(
            "INSERT INTO blobs (sha256, md5, size, format, mime, width, height, orientation, "
            "taken_at, camera_make, camera_model, has_gps, decodable, thumbnail, created_at, exif) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sha256) DO NOTHING",
            (
                blob.sha256,
                blob.md5,
                blob.size,
                blob.format,
                blob.mime,
                blob.width,
                blob.height,
                blob.orientation,
                blob.taken_at,
                blob.camera_make,
                blob.camera_model,
                blob.has_gps,
                blob.decodable,
                None if blob.thumbnail is None else int(blob.thumbnail),
                now,
                None if blob.exif is None else int(blob.exif),
            ),
        )
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
        existing = self._db.execute(
            "SELECT deleted_at FROM entries WHERE user_id = ? AND sha256 = ?",
            (user_id, blob.sha256),
        ).fetchone()
        if existing is None:
            self._db.execute(
                "INSERT INTO entries (user_id, sha256, filename, uploaded_at, taken_ts) "
                "VALUES (?, ?, ?, ?, ?)",
                (user_id, blob.sha256, filename, now, sort_time(blob.taken_at, now)),
            )
        elif existing[0] is not None:
            self._db.execute(
                "UPDATE entries SET deleted_at = NULL WHERE user_id = ? AND sha256 = ?",
                (user_id, blob.sha256),
            )
        record = self._get(user_id, blob.sha256, False)
        assert record is not None
        return record, existing is not None and existing[0] is None

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
        row = self._db.execute(timeline.FIND_BY_MD5_SQL, (md5, user_id)).fetchone()
        return None if row is None else _image(row)

    async def find_by_md5(self, user_id: int, md5: str) -> ImageRecord | None:
        return await self._run(self._find_by_md5, user_id, md5)

    def _list(
        self, user_id: int, limit: int, after: Position | None, trashed: bool
    ) -> list[ImageRecord]:
        sql = timeline.page_sql(trashed, after is not None)
        params: list[Any] = [user_id, *(after or ()), limit]
        return [_image(row) for row in self._db.execute(sql, params)]

    async def list_images(
        self, user_id: int, limit: int, after: Position | None, *, trashed: bool = False
    ) -> list[ImageRecord]:
        return await self._run(self._list, user_id, limit, after, trashed)

    def _present(self, user_id: int, field: HashField, values: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(values), 500):
            batch = values[start : start + 500]
            rows = self._db.execute(
                timeline.present_sql(field, len(batch)),
                timeline.present_params(field, user_id, batch),
            )
            found.update(row[0] for row in rows)
        return found

    async def present(self, user_id: int, field: HashField, values: Iterable[str]) -> set[str]:
        return await self._run(self._present, user_id, field, list(values))

    async def query_plans(self) -> dict[str, list[str]]:
        """How SQLite plans the timeline's queries on this catalog (sqlite_timeline.plans)."""
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

    def _purge(self, user_id: int, sha256: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM entries WHERE user_id = ? AND sha256 = ? AND deleted_at IS NOT NULL",
            (user_id, sha256),
        )
        return cursor.rowcount > 0

    async def purge(self, user_id: int, sha256: str) -> bool:
        return await self._write(self._purge, user_id, sha256)

    def _expire_trash(self, deleted_before: float) -> int:
        cursor = self._db.execute(
            "DELETE FROM entries WHERE deleted_at IS NOT NULL AND deleted_at < ?",
            (deleted_before,),
        )
        return cursor.rowcount

    async def expire_trash(self, deleted_before: float) -> int:
        return await self._write(self._expire_trash, deleted_before)

    def _is_referenced(self, sha256: str) -> bool:
        row = self._db.execute("SELECT 1 FROM entries WHERE sha256 = ? LIMIT 1", (sha256,))
        return row.fetchone() is not None

    async def is_referenced(self, sha256: str) -> bool:
        return await self._run(self._is_referenced, sha256)

    def _drop_unreferenced(self) -> list[str]:
        rows = self._db.execute(
            "DELETE FROM blobs WHERE NOT EXISTS "
            "(SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256) RETURNING sha256"
        )
        return sorted(row[0] for row in rows)

    async def drop_unreferenced_blobs(self) -> list[str]:
        return await self._write(self._drop_unreferenced)

    def _known(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT sha256 FROM blobs")}

    async def known_blobs(self) -> set[str]:
        return await self._run(self._known)

    def _set_thumbnail(self, sha256: str, made: bool) -> None:
        self._db.execute("UPDATE blobs SET thumbnail = ? WHERE sha256 = ?", (int(made), sha256))

    async def set_thumbnail(self, sha256: str, made: bool) -> None:
        await self._write(self._set_thumbnail, sha256, made)

    # integrity (scrub) -------------------------------------------------------

    def _get_blob(self, sha256: str) -> BlobRecord | None:
        row = self._db.execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return None if row is None else _blob(row, row[14], row[15])

    async def get_blob(self, sha256: str) -> BlobRecord | None:
        return await self._run(self._get_blob, sha256)

    def _blobs_after(self, sha256: str, limit: int) -> list[BlobRecord]:
        rows = self._db.execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE sha256 > ? ORDER BY sha256 LIMIT ?",
            (sha256, limit),
        )
        return [_blob(row, row[14], row[15]) for row in rows]

    async def blobs_after(self, sha256: str, limit: int) -> list[BlobRecord]:
        return await self._run(self._blobs_after, sha256, limit)

    def _pending_thumbnails(self, limit: int) -> list[BlobRecord]:
        rows = self._db.execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs "
            "WHERE thumbnail IS NULL AND decodable = 1 AND damage IS NULL "
            "ORDER BY created_at LIMIT ?",
            (limit,),
        )
        return [_blob(row, row[14], row[15]) for row in rows]

    async def pending_thumbnails(self, limit: int = -1) -> list[BlobRecord]:
        return await self._run(self._pending_thumbnails, limit)

    def _count_pending_thumbnails(self) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM blobs "
            "WHERE thumbnail IS NULL AND decodable = 1 AND damage IS NULL"
        ).fetchone()
        return int(row[0])

    async def count_pending_thumbnails(self) -> int:
        return await self._run(self._count_pending_thumbnails)

    def _attempt_thumbnail(self, sha256: str) -> int:
        row = self._db.execute(
            "UPDATE blobs SET thumbnail_attempts = thumbnail_attempts + 1 WHERE sha256 = ? "
            "RETURNING thumbnail_attempts",
            (sha256,),
        ).fetchone()
        return 0 if row is None else int(row[0])

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
        return [_image(row) for row in rows]

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
        count, size = self._db.execute("SELECT count(*), total(size) FROM blobs").fetchone()
        return int(count), int(size)

    async def blob_totals(self) -> tuple[int, int]:
        return await self._run(self._blob_totals)

    def _owners(self, sha256: str) -> list[Owner]:
        rows = self._db.execute(
            "SELECT u.name, e.filename, e.deleted_at IS NOT NULL FROM entries e "
            "JOIN users u ON u.id = e.user_id WHERE e.sha256 = ? ORDER BY u.name, e.filename",
            (sha256,),
        )
        return [Owner(row[0], row[1], bool(row[2])) for row in rows]

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

    # tus uploads -------------------------------------------------------------

    def _add_upload(self, upload: UploadRecord) -> None:
        self._db.execute(
            f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                upload.id,
                upload.user_id,
                upload.length,
                upload.offset,
                json.dumps(dict(upload.metadata), ensure_ascii=False),
                upload.created_at,
                upload.expires_at,
                upload.image_sha256,
                None if upload.duplicate is None else int(upload.duplicate),
            ),
        )

    async def add_upload(self, upload: UploadRecord) -> None:
        await self._write(self._add_upload, upload)

    def _open_uploads(self, user_id: int, now: float) -> OpenUploads:
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(length), 0) FROM uploads WHERE user_id = ? "
            'AND expires_at > ? AND image_sha256 IS NULL AND "offset" < length',
            (user_id, now),
        ).fetchone()
        return OpenUploads(row[0], row[1])

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
        return None if row is None else _upload(row)

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
        return [_upload(row) for row in rows]

    async def expired_uploads(
        self, now: float, after: tuple[float, str] | None = None, limit: int = 500
    ) -> list[UploadRecord]:
        """Uploads expired by `now`, oldest first, `limit` at a time after `after`
        (the expiry and id of the last one of the batch before)."""
        return await self._run(self._expired_uploads, now, after, limit)

    def _known_uploads(self, ids: Sequence[str]) -> set[str]:
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(f"SELECT id FROM uploads WHERE id IN ({marks})", tuple(ids))
        return {row[0] for row in rows}

    async def known_uploads(self, ids: Sequence[str]) -> set[str]:
        """Which of these upload ids have a row (at most a few hundred at a time)."""
        return await self._run(self._known_uploads, list(ids)) if ids else set()

    def _reclaim_space(self, pages: int) -> int:
        before: int = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        if before:
            # It frees one page per step, and execute() takes only the first step of a
            # statement without columns: sqlite3_exec (executescript) takes them all.
            self._db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        after: int = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        if after == 0 and before:
            # Hand back what the WAL grew to as well.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return before - after

    async def reclaim_space(self) -> int:
        """Give the file system back the catalog's free pages, a batch per catalog call;
        how many pages were freed."""
        freed = 0
        while True:
            batch = await self._run(self._reclaim_space, RECLAIM_PAGES)
            freed += batch
            if batch < RECLAIM_PAGES:
                return freed

    def _upload_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT id FROM uploads")}

    async def upload_ids(self) -> set[str]:
        return await self._run(self._upload_ids)
