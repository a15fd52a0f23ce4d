"""The server's keys in the catalog, on both backends: made once, the same for every
caller and every process, kept across a reopening."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.catalog import Catalog
from server.catalog.postgres import PoolSettings, PostgresCatalog
from server.catalog.sqlite import SQLiteCatalog


@pytest.mark.gen_test
async def test_the_first_key_kept_is_the_one_everyone_gets(catalog: Catalog) -> None:
    assert await catalog.server_key("k", b"first", 100.0) == b"first"
    assert await catalog.server_key("k", b"second", 101.0) == b"first"
    assert await catalog.server_key("other", b"apart", 101.0) == b"apart"


@pytest.mark.gen_test
async def test_of_callers_at_once_one_key_wins(catalog: Catalog) -> None:
    keys = await asyncio.gather(
        *(catalog.server_key("k", f"candidate-{n}".encode(), 100.0) for n in range(12))
    )
    assert len(set(keys)) == 1
    assert keys[0].startswith(b"candidate-")


@pytest.mark.gen_test
async def test_a_key_survives_reopening_the_sqlite_file(tmp_path: Path) -> None:
    first = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    assert await first.server_key("k", b"kept", 1.0) == b"kept"
    await first.close()
    again = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    try:
        assert await again.server_key("k", b"new", 2.0) == b"kept"
    finally:
        await again.close()


@pytest.mark.gen_test
async def test_two_pools_on_one_postgresql_database_share_the_key(postgres_url: str) -> None:
    one = PostgresCatalog(postgres_url, PoolSettings(size=2, timeout=10))
    two = PostgresCatalog(postgres_url, PoolSettings(size=2, timeout=10))
    await one.start()
    await two.start()
    try:
        keys = await asyncio.gather(
            one.server_key("k", b"from-one", 1.0), two.server_key("k", b"from-two", 1.0)
        )
        assert keys[0] == keys[1] in (b"from-one", b"from-two")
    finally:
        await one.close()
        await two.close()
