"""SQLiteCatalog on a real database file: its schema, and people and tokens."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.catalog import Catalog, CatalogTooNew
from server.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from tests.catalog.records import path, side_connection, sqlite_only

__all__ = ["path"]  # a fixture, used by name

# schema -------------------------------------------------------------------------


def test_an_older_catalog_is_rebuilt_once_to_reclaim_space(path: Path) -> None:
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode = WAL")
    old.execute("CREATE TABLE filler (x BLOB)")
    old.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 4000,) for _ in range(200)])
    old.commit()
    old.execute("DELETE FROM filler")
    old.commit()
    assert old.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    assert old.execute("PRAGMA freelist_count").fetchone()[0] > 100
    old.close()
    SQLiteCatalog(path).close_now()
    db = side_connection(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM filler").fetchone()[0] == 0  # nothing lost
    db.close()


def test_migrations_set_user_version_and_reopening_is_idempotent(path: Path) -> None:
    first = SQLiteCatalog(path)
    assert first.schema_version == len(MIGRATIONS)
    first.close_now()
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "tokens", "pairing_codes", "blobs", "entries", "uploads"} <= tables
    db.execute("INSERT INTO users (name, created_at) VALUES ('kept', 0)")
    db.close()

    SQLiteCatalog(path).close_now()  # migrating again must neither fail nor reset anything
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT name FROM users").fetchall() == [("kept",)]
    db.close()


def test_a_newer_catalog_is_refused(path: Path) -> None:
    SQLiteCatalog(path).close_now()
    db = side_connection(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(CatalogTooNew, match=r"newer than this server knows.*upgrade"):
        SQLiteCatalog(path)
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
    db.close()


def test_a_migration_done_meanwhile_by_another_process_is_not_redone(path: Path) -> None:
    """Two processes (`serve` and `token`) may open a fresh data folder at once."""
    other = side_connection(path)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(max_workers=1) as pool:
        opening = pool.submit(SQLiteCatalog, path)
        time.sleep(0.3)  # let it wait on the lock the other process holds
        for statement in MIGRATIONS[0].split(";"):
            if statement.strip():
                other.execute(statement)
        other.execute("PRAGMA user_version = 1")
        other.execute("COMMIT")
        other.close()
        opened = opening.result(timeout=10)
    opened.close_now()
    db = side_connection(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


@sqlite_only
def test_wal_mode_is_on(catalog: SQLiteCatalog, path: Path) -> None:
    db = side_connection(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


# people and tokens --------------------------------------------------------------


@pytest.mark.gen_test
async def test_ensure_user_is_idempotent(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    assert alice.name == "alice" and bob.name == "bob"
    assert alice.id != bob.id
    assert await catalog.ensure_user("alice") == alice


@pytest.mark.gen_test
async def test_tokens_resolve_to_their_user_and_device(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    device = await catalog.add_token(alice.id, "h" * 64, "phone")
    assert device.user_id == alice.id and device.name == "phone"
    found = await catalog.user_for_token("h" * 64)
    assert found is not None
    user, seen = found
    assert user == alice
    assert seen.id == device.id and seen.name == "phone"
    assert seen.last_seen_at is not None
    assert await catalog.user_for_token("x" * 64) is None


@pytest.mark.gen_test
@sqlite_only
async def test_a_revoked_token_is_refused(catalog: SQLiteCatalog, path: Path) -> None:
    # No revoke call exists yet; the schema's revoked_at is what one would set.
    alice = await catalog.ensure_user("alice")
    await catalog.add_token(alice.id, "r" * 64, "lost phone")
    await catalog.add_token(alice.id, "k" * 64, "kept phone")
    db = side_connection(path)
    db.execute("UPDATE tokens SET revoked_at = ? WHERE token_hash = ?", (time.time(), "r" * 64))
    db.close()
    assert await catalog.user_for_token("r" * 64) is None
    assert await catalog.user_for_token("k" * 64) is not None


@pytest.mark.gen_test
async def test_pairing_codes_are_one_time(catalog: Catalog) -> None:
    carol = await catalog.ensure_user("carol")
    now = time.time()
    assert await catalog.add_pairing_code("c1", carol.id, now + 600) is True
    assert await catalog.add_pairing_code("c1", carol.id, now + 600) is False
    assert await catalog.redeem_pairing_code("c2", now) is None
    assert await catalog.redeem_pairing_code("c1", now) == carol
    assert await catalog.redeem_pairing_code("c1", now) is None
    # A used code's hash may be handed out again later.
    assert await catalog.add_pairing_code("c1", carol.id, now + 600) is True
    assert await catalog.redeem_pairing_code("c1", now + 1) == carol


@pytest.mark.gen_test
async def test_pairing_codes_expire(catalog: Catalog) -> None:
    carol = await catalog.ensure_user("carol")
    now = time.time()
    assert await catalog.add_pairing_code("soon", carol.id, now + 60)
    assert await catalog.redeem_pairing_code("soon", now + 61) is None
    assert await catalog.redeem_pairing_code("soon", now + 59) == carol
    assert await catalog.add_pairing_code("past", carol.id, now - 1)
    assert await catalog.redeem_pairing_code("past", now) is None
