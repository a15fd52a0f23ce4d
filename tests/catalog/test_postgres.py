"""PostgresCatalog: its migrations, several processes starting at once, and the database
going away and coming back (a relay cut, connections terminated), on a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import tornado.ioloop

from server.catalog import CatalogTooNew, CatalogUnavailable
from server.catalog.postgres import MIGRATIONS, PoolSettings, PostgresCatalog
from tests import postgres_server
from tests.catalog.records import blob, upload
from tests.server_cli import free_port
from tests.tcp_relay import TcpRelay

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    postgres_server.problem() is not None, reason=str(postgres_server.problem())
)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database of its own, never migrated, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


def via(url: str, port: int) -> str:
    """The same database, reached through 127.0.0.1:port."""
    return url.replace(f"{postgres_server.HOST}:{postgres_server.PORT}", f"127.0.0.1:{port}")


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


@pytest.mark.gen_test
async def test_migrations_are_recorded_and_not_redone(fresh_database: str) -> None:
    first = PostgresCatalog(fresh_database)
    await first.start()
    assert first.migrations_applied == len(MIGRATIONS)
    alice = await first.ensure_user("alice")
    await first.close()
    assert versions(fresh_database) == list(range(1, len(MIGRATIONS) + 1))
    again = PostgresCatalog(fresh_database)
    await again.start()
    assert again.migrations_applied == 0
    assert await again.find_user("alice") == alice
    await again.close()


@pytest.mark.gen_test
async def test_a_newer_catalog_is_refused(fresh_database: str) -> None:
    first = PostgresCatalog(fresh_database)
    await first.start()
    await first.close()
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (len(MIGRATIONS) + 1,))
    newer = PostgresCatalog(fresh_database)
    with pytest.raises(CatalogTooNew, match="upgrade Tubei"):
        await newer.start()


MIGRATE = """
import asyncio, sys
from server.catalog.postgres import PostgresCatalog
async def main() -> None:
    catalog = PostgresCatalog(sys.argv[1])
    await catalog.start()
    print(catalog.migrations_applied)
    await catalog.close()
asyncio.run(main())
"""


def test_three_processes_starting_at_once_migrate_once(fresh_database: str) -> None:
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, fresh_database],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [process.communicate(timeout=60) for process in starting]
    assert [process.returncode for process in starting] == [0, 0, 0], results
    applied = sorted(int(out.strip()) for out, _ in results)
    assert applied == [0, 0, len(MIGRATIONS)]
    assert versions(fresh_database) == list(range(1, len(MIGRATIONS) + 1))


@pytest.mark.gen_test
async def test_unreachable_at_start_up_is_one_clear_error() -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/tubei"
    catalog = PostgresCatalog(nowhere, PoolSettings(size=2, timeout=1))
    started = time.monotonic()
    with pytest.raises(CatalogUnavailable, match=r"cannot reach the catalog at .*--catalog"):
        await catalog.start()
    assert time.monotonic() - started < 10


def terminate_backends(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'tubei' AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.gen_test
async def test_terminated_connections_are_replaced_without_an_error(postgres_url: str) -> None:
    catalog = PostgresCatalog(postgres_url, PoolSettings(size=3, timeout=5))
    await catalog.start()
    try:
        alice = await catalog.ensure_user("alice")
        assert terminate_backends(postgres_url) >= 1
        # The pool's connection is dead; nothing was sent on it yet, so the call is
        # made again on a fresh one.
        image, _ = await catalog.add_image(alice.id, blob(1), "one.jpg", 1000.0)
        assert await catalog.get_image(alice.id, image.sha256) == image
    finally:
        await catalog.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_database_gone_mid_run_is_unavailable_writes_nothing_and_comes_back(
    postgres_url: str, io_loop: tornado.ioloop.IOLoop
) -> None:
    target = (postgres_server.HOST, postgres_server.PORT)
    with TcpRelay(target) as relay:
        catalog = PostgresCatalog(via(postgres_url, relay.port), PoolSettings(size=2, timeout=1))
        await catalog.start()
        try:
            alice = await catalog.ensure_user("alice")
            await catalog.add_image(alice.id, blob(1), "kept.jpg", 1000.0)
            relay.cut()
            with pytest.raises(CatalogUnavailable):
                await catalog.add_image(alice.id, blob(2), "lost.jpg", 1001.0)
            with pytest.raises(CatalogUnavailable):
                await catalog.add_upload(upload("u-lost", alice.id))
            with pytest.raises(CatalogUnavailable):
                await catalog.list_images(alice.id, 10, None)
            # Nothing of the refused calls is in the database.
            with psycopg.connect(postgres_url) as conn:
                assert conn.execute("SELECT count(*) FROM entries").fetchone() == (1,)
                assert conn.execute("SELECT count(*) FROM blobs").fetchone() == (1,)
                assert conn.execute("SELECT count(*) FROM uploads").fetchone() == (0,)
            relay.restore()
            deadline = time.monotonic() + 20
            while True:
                try:
                    listed = await catalog.list_images(alice.id, 10, None)
                    break
                except CatalogUnavailable:
                    assert time.monotonic() < deadline, "the catalog did not come back"
            assert [image.filename for image in listed] == ["kept.jpg"]
            await catalog.add_image(alice.id, blob(2), "later.jpg", 1002.0)
            assert len(await catalog.list_images(alice.id, 10, None)) == 2
        finally:
            await catalog.close()
