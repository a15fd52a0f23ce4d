"""Group commit on a real SQLite file: the durable writes queued together share one
transaction and one commit; each is answered after that commit; one that fails,
even one that takes the whole transaction down, fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from server.catalog import CatalogFull
from server.catalog.sqlite import SQLiteCatalog
from tests.catalog.records import blob

# The catalog fixture (tests/catalog/conftest.py), on SQLite only.
pytestmark = pytest.mark.parametrize("catalog", ["sqlite"], indirect=True)


class Held:
    """The catalog thread kept busy until `release`: what is written meanwhile queues."""

    def __init__(self, catalog: SQLiteCatalog) -> None:
        self._go = threading.Event()
        self._busy = threading.Event()
        self.statements: list[str] = []
        self._catalog = catalog

        def hold() -> None:
            catalog._db.set_trace_callback(self.statements.append)
            self._busy.set()
            self._go.wait()

        catalog._executor.submit(hold)
        assert self._busy.wait(30)

    async def queued(self, count: int) -> None:
        """Until `count` writes wait in the queue (each caller has reached it)."""
        for _ in range(3000):
            if len(self._catalog._group._queued) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self._catalog._group._queued)} writes queued, not {count}")

    def release(self) -> None:
        self._go.set()

    def commits(self) -> int:
        return sum(1 for s in self.statements if s == "COMMIT")


def side_rows(path: Path) -> set[str]:
    """The entries another connection sees: what is committed."""
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT sha256 FROM entries")}
    finally:
        db.close()


@pytest.mark.gen_test
async def test_writes_queued_together_are_one_commit_and_all_answered(
    catalog: SQLiteCatalog,
) -> None:
    alice = await catalog.ensure_user("alice")
    photos = [blob(f"group-{n}") for n in range(12)]
    held = Held(catalog)
    writes = [
        asyncio.ensure_future(catalog.add_image(alice.id, p, f"{n}.jpg", 1.0))
        for n, p in enumerate(photos)
    ]
    await held.queued(len(photos))
    assert not any(w.done() for w in writes)
    assert side_rows(catalog.path) == set()
    held.release()
    added = await asyncio.gather(*writes)
    assert [image.sha256 for image, _ in added] == [p.sha256 for p in photos]
    assert held.commits() == 1, held.statements
    assert side_rows(catalog.path) == {p.sha256 for p in photos}


@pytest.mark.gen_test
async def test_each_is_answered_only_once_its_commit_is_done(catalog: SQLiteCatalog) -> None:
    alice = await catalog.ensure_user("alice")
    seen: list[bool] = []

    async def add(n: int) -> None:
        photo = blob(f"seen-{n}")
        await catalog.add_image(alice.id, photo, "p.jpg", 1.0)
        # Answered: another connection must see it, at once.
        seen.append(photo.sha256 in side_rows(catalog.path))

    await asyncio.gather(*(add(n) for n in range(30)))
    assert seen == [True] * 30


@pytest.mark.gen_test
async def test_a_failing_write_fails_alone(catalog: SQLiteCatalog) -> None:
    alice = await catalog.ensure_user("alice")
    before, after = blob("before"), blob("after")
    held = Held(catalog)
    first = asyncio.ensure_future(catalog.add_image(alice.id, before, "b.jpg", 1.0))
    # No such user: the entry breaks its foreign key, after the blob row went in.
    bad = asyncio.ensure_future(catalog.add_image(alice.id + 99, blob("bad"), "x.jpg", 1.0))
    last = asyncio.ensure_future(catalog.add_image(alice.id, after, "a.jpg", 1.0))
    await held.queued(3)
    held.release()
    with pytest.raises(sqlite3.IntegrityError):
        await bad
    await first
    await last
    assert held.commits() == 1
    assert side_rows(catalog.path) == {before.sha256, after.sha256}
    assert await catalog.get_blob(blob("bad").sha256) is None, "its blob row is rolled back too"


@pytest.mark.gen_test
async def test_a_write_that_ends_the_transaction_fails_alone(catalog: SQLiteCatalog) -> None:
    alice = await catalog.ensure_user("alice")
    before, after = blob("before-full"), blob("after-full")

    def fill_up() -> None:
        # SQLITE_FULL: SQLite rolls the whole transaction back, the writes before it too.
        catalog._db.execute("CREATE TABLE IF NOT EXISTS ballast (b BLOB)")
        pages = catalog._db.execute("PRAGMA page_count").fetchone()[0]
        catalog._db.execute(f"PRAGMA max_page_count = {pages}")
        try:
            catalog._add_image(alice.id, blob("lost"), "lost.jpg", 1.0)
            catalog._db.execute("INSERT INTO ballast VALUES (zeroblob(1000000))")
        finally:
            catalog._db.execute("PRAGMA max_page_count = 1073741823")

    held = Held(catalog)
    first = asyncio.ensure_future(catalog.add_image(alice.id, before, "b.jpg", 1.0))
    full = asyncio.ensure_future(catalog._write(fill_up))
    last = asyncio.ensure_future(catalog.add_image(alice.id, after, "a.jpg", 1.0))
    await held.queued(3)
    held.release()
    with pytest.raises(CatalogFull):
        await full
    await first
    await last
    assert side_rows(catalog.path) == {before.sha256, after.sha256}
