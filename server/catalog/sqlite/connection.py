"""One SQLite connection, used from one thread, and its transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..records import CatalogFull, CatalogTooNew
from ..use import CatalogUse
from .group_commit import GroupCommit
from .migrations import MIGRATIONS

T = TypeVar("T")

# Freed pages handed back to the file system per call, so that reclaiming space
# never holds the one catalog thread for long.
RECLAIM_PAGES = 2048


class Connection:
    """The file in WAL mode; every call runs on the connection's one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
        self._calls = 0  # queries submitted and not yet answered
        self._group = GroupCommit(lambda: self._db)
        try:
            self._db: sqlite3.Connection = self._executor.submit(self._connect).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 10000")
            self._incremental_vacuum(db)
            db.execute("PRAGMA journal_mode = WAL")
            # An acknowledged upload must survive power loss: FULL syncs the WAL on commit.
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            migrate(db)
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

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        self._calls += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as error:
            if _is_full(error):
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
        """A durable write, committed with the others queued beside it (group_commit);
        answered once that commit is on disk."""
        self._calls += 1
        try:
            answer, schedule = self._group.add(fn, *args)
            if schedule:
                self._executor.submit(self._group.run_queued)
            result: T = await asyncio.wrap_future(answer)
            return result
        except sqlite3.OperationalError as error:
            if _is_full(error):
                raise CatalogFull(str(error)) from error
            raise
        finally:
            self._calls -= 1

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

    async def start(self) -> None:
        """Nothing to reach: the file was opened (and migrated) with the object."""

    async def close(self) -> None:
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)

    def close_now(self) -> None:
        self._executor.submit(self._db.close).result()
        self._executor.shutdown(wait=True)


def _is_full(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def migrate(db: sqlite3.Connection) -> int:
    """Apply what MIGRATIONS has beyond the file's version; how many were applied."""
    applied = 0
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
                return applied
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
            applied += 1
        except BaseException:
            db.execute("ROLLBACK")
            raise
