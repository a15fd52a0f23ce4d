"""The catalog suite runs on both backends: `catalog` is SQLite, then PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import tornado.ioloop

from server.catalog import Catalog
from server.catalog.postgres import PoolSettings, PostgresCatalog
from server.catalog.sqlite import SQLiteCatalog


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(
    request: pytest.FixtureRequest, tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> Iterator[Catalog]:
    opened: Catalog
    if request.param == "sqlite":
        opened = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    else:
        url: str = request.getfixturevalue("postgres_url")
        opened = PostgresCatalog(url, PoolSettings(size=4, timeout=10))
    io_loop.run_sync(opened.start)
    yield opened
    io_loop.run_sync(opened.close)


@pytest.fixture
def reopen(
    catalog: Catalog, io_loop: tornado.ioloop.IOLoop
) -> Iterator[Callable[[], Awaitable[Catalog]]]:
    """Another catalog on `catalog`'s database, with a connection of its own, as
    another process opens it (started now, closed with the test)."""
    opened: list[Catalog] = []

    async def another() -> Catalog:
        again: Catalog
        if isinstance(catalog, SQLiteCatalog):
            again = SQLiteCatalog(catalog.path)
        else:
            assert isinstance(catalog, PostgresCatalog)
            again = PostgresCatalog(catalog.url, PoolSettings(size=4, timeout=10))
        await again.start()
        opened.append(again)
        return again

    yield another
    for again in opened:
        io_loop.run_sync(again.close)
