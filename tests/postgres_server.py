"""PostgreSQL for the tests: the machine's own at 127.0.0.1:5432 (trust auth).

Each test run creates a database of its own (`tubei_test_<random>`), migrates it once,
empties its tables between tests, and drops it at the end. Where no PostgreSQL
answers, the run's header says so in one line and only the tests that need it skip.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterator
from functools import cache

import psycopg
import pytest

HOST, PORT = "127.0.0.1", 5432
TABLES = (
    "entries",
    "uploads",
    "pairing_codes",
    "tokens",
    "blobs",
    "users",
    "throttles",
    "leases",
    "server_keys",
)


def admin_url(user: str) -> str:
    return f"postgresql://{user}@{HOST}:{PORT}/postgres"


@cache
def admin() -> str | None:
    """A URL that may create databases, or None."""
    for user in ("postgres", getpass.getuser(), "root"):
        try:
            with psycopg.connect(admin_url(user), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return admin_url(user)
        except psycopg.Error:
            continue
    return None


def problem() -> str | None:
    if admin() is None:
        return f"no PostgreSQL answers at {HOST}:{PORT}: the PostgreSQL catalog tests are skipped"
    return None


def report_line() -> str:
    return problem() or f"PostgreSQL at {HOST}:{PORT}: the catalog suite runs on it too"


def create_database() -> str:
    url = admin()
    assert url is not None
    name = f"tubei_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin_url_ = admin()
    assert admin_url_ is not None
    with psycopg.connect(admin_url_, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """This run's database (created empty; skipped where there is no PostgreSQL)."""
    reason = problem()
    if reason:
        pytest.skip(reason)
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """This run's database, its tables emptied for the test."""
    truncate(postgres_database)
    return postgres_database
