"""A catalog as an older Tubei left it: migrated up to a version, rows written then.

Each migration test builds one with `sqlite_catalog_at` or `postgres_catalog_at`, then
opens it with today's code, which migrates the rest. A test finds its version by what
its migration does (`version_before`), never by its place in the list: later
migrations are appended after it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from server.catalog import postgres as pg
from server.catalog import sqlite as lite
from tests import postgres_server

Execute = Callable[..., Any]
# Writes the old rows: (execute, the driver's placeholder: "?" or "%s").
Fill = Callable[[Execute, str], None]


def version_before(migrations: Sequence[str], marker: str) -> int:
    """The schema version just before the first migration whose text holds `marker`."""
    return migrations.index(next(m for m in migrations if marker in m))


@asynccontextmanager
async def sqlite_catalog_at(
    path: Path, version: int, fill: Fill
) -> AsyncIterator[lite.SQLiteCatalog]:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in lite.MIGRATIONS[:version]:
            db.executescript(migration)
        fill(db.execute, "?")
        db.execute(f"PRAGMA user_version = {version}")
    finally:
        db.close()
    catalog = lite.SQLiteCatalog(path)
    try:
        yield catalog
    finally:
        await catalog.close()


@asynccontextmanager
async def postgres_catalog_at(version: int, fill: Fill) -> AsyncIterator[pg.PostgresCatalog]:
    """In a database of its own, dropped after."""
    if postgres_server.problem() is not None:
        pytest.skip(str(postgres_server.problem()))
    url = postgres_server.create_database()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for number, migration in enumerate(pg.MIGRATIONS[:version], start=1):
                conn.execute(migration.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
            fill(conn.execute, "%s")
        catalog = pg.PostgresCatalog(url)
        await catalog.start()
        try:
            yield catalog
        finally:
            await catalog.close()
    finally:
        postgres_server.drop_database(url)
