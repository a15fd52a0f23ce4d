"""A pool of psycopg 3 async connections, and how a call gets one.

Each catalog call is one function of a connection: `_read` runs it as it is (one
statement each, autocommit), `_write` inside one transaction. What the database says
maps onto what callers understand:

- a serialization failure or a deadlock is retried, a bounded number of times;
- a connection found dead before anything was committed (PostgreSQL restarted, the
  pool's idle connections cut) is retried once on a fresh one, after the pool has
  checked the rest;
- otherwise an unreachable or timed-out database is `CatalogUnavailable`, with nothing
  of the call written (PostgreSQL rolls back a transaction whose connection dies
  before COMMIT). A COMMIT whose answer is lost is reported the same way: the caller
  does not know, and says so, rather than acknowledging.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...config_values import redact_url
from ..records import CatalogFull, CatalogUnavailable
from ..use import CatalogUse
from .migrations import MIGRATIONS, migrate

T = TypeVar("T")
Conn = psycopg.AsyncConnection[DictRow]
Work = Callable[[Conn], Awaitable[T]]

log = logging.getLogger(__name__)

RETRIES = 5
"""Attempts of a transaction that fails to serialize (or deadlocks) before giving up."""


@dataclass(frozen=True)
class PoolSettings:
    size: int = 8
    timeout: float = 10.0  # statement_timeout, and the longest wait for a connection


class Connection:
    def __init__(self, url: str, settings: PoolSettings | None = None) -> None:
        self.url = url
        self.settings = settings or PoolSettings()
        self._pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=self.settings.size,
            open=False,
            timeout=self.settings.timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, **self._connect_options()},
            # Keep trying to reconnect for a day; the pool gives up on an address only then.
            reconnect_timeout=86400.0,
            name="tubei-catalog",
        )
        self.migrations_applied = 0

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    @property
    def pool(self) -> AsyncConnectionPool[Conn]:
        return self._pool

    async def start(self) -> None:
        """Reach PostgreSQL and migrate; CatalogUnavailable (one sentence) if it cannot."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, row_factory=dict_row, **self._connect_options()
            )
        except psycopg.OperationalError as error:
            reason = str(error).strip().splitlines()[-1].strip() or "no answer"
            raise CatalogUnavailable(
                f"cannot reach the catalog at {redact_url(self.url)}: {reason} "
                "(--catalog, TUBEI_CATALOG)"
            ) from None
        async with conn:
            self.migrations_applied = await migrate(conn)
        try:
            await self._pool.open(wait=True, timeout=self.settings.timeout)
        except PoolTimeout:
            await self._pool.close()
            raise CatalogUnavailable(
                f"cannot reach the catalog at {redact_url(self.url)} "
                f"within {self.settings.timeout:g}s (--catalog, TUBEI_CATALOG)"
            ) from None

    def _connect_options(self) -> dict[str, Any]:
        return {
            "connect_timeout": max(1, int(self.settings.timeout)),
            "options": f"-c statement_timeout={int(self.settings.timeout * 1000)}",
            "application_name": "tubei",
        }

    async def close(self) -> None:
        await self._pool.close()

    def use(self) -> CatalogUse:
        """The pool: connections open, those lent out, and calls waiting for one."""
        stats = self._pool.get_stats()
        size = stats.get("pool_size", 0)
        return CatalogUse(
            size=size,
            in_use=size - stats.get("pool_available", 0),
            waiting=stats.get("requests_waiting", 0),
        )

    async def reclaim_space(self) -> int:
        """Nothing to hand back by hand: PostgreSQL's autovacuum makes dead rows' space
        reusable as it goes, and returning it to the file system (VACUUM FULL) would
        lock the tables. The server's own budget on disk is SQLite's concern."""
        return 0

    async def _call(self, work: Work[T], transaction: bool, synced: bool = True) -> T:
        fresh_tried = False
        attempt = 0
        while True:
            attempt += 1
            committing = False
            try:
                async with self._pool.connection() as conn:
                    if not transaction:
                        return await work(conn)
                    # One flight for BEGIN, the statements whose answers are not
                    # awaited yet and COMMIT: fewer round trips to the database.
                    async with conn.pipeline(), conn.transaction():
                        if not synced:
                            await conn.execute("SET LOCAL synchronous_commit = off")
                        result = await work(conn)
                        committing = True  # leaving the block sends COMMIT
                    return result
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                if attempt >= RETRIES:
                    raise
                await asyncio.sleep(0.005 * 2**attempt)
            except psycopg.errors.DiskFull as error:
                raise CatalogFull(str(error)) from error
            except psycopg.errors.QueryCanceled as error:
                raise CatalogUnavailable(f"the catalog did not answer in time: {error}") from None
            except PoolTimeout:
                raise CatalogUnavailable("no connection to the catalog's database") from None
            except psycopg.OperationalError as error:
                if committing or fresh_tried:
                    raise CatalogUnavailable(
                        f"the catalog's database is unreachable: {error}"
                    ) from None
                fresh_tried = True
                await self._pool.check()  # drop the other dead connections, then once more

    async def _read(self, work: Work[T]) -> T:
        return await self._call(work, transaction=False)

    async def _write(self, work: Work[T]) -> T:
        return await self._call(work, transaction=True)

    async def _write_unsynced(self, work: Work[T]) -> T:
        """A write that survives the process dying but may be lost with the database
        server's power: for what can be done again (derived images and their attempts),
        so that no upload's COMMIT waits behind its flush."""
        return await self._call(work, transaction=True, synced=False)


async def rows(conn: Conn, sql: str, params: Any = None) -> list[DictRow]:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchall()


async def one(conn: Conn, sql: str, params: Any = None) -> DictRow | None:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchone()


async def affected(conn: Conn, sql: str, params: Any = None) -> int:
    """Run a statement; how many rows it changed. Its answer is waited for: in a
    pipeline, a nested pipeline block syncs on leaving."""
    async with conn.pipeline():
        cursor = await conn.execute(sql, params)
    return cursor.rowcount
