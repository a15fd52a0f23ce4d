"""`scripts/bench --only catalog`: the catalog on PostgreSQL against SQLite, same run.

Two servers run side by side, `python -m server serve` each over the same million-photo
library (the rows bench_timeline makes: `blobs` and `entries` as `add_image` writes
them, no files), one with its catalog in SQLite under --data and one with
`--catalog postgresql://...` (a database made for the run, filled by COPY, dropped at
the end). Requests alternate between them through the same kind of client:

- list pages: the first page, the three next ones as a scrolling gallery asks, and a
  page 90% deep by cursor; the figure is the median of all of them (target: PostgreSQL
  at most 1.5x SQLite's time);
- ingest: small unique photos sent one by one through POST /images, in alternating
  batches (target: PostgreSQL at least 0.8x SQLite's photos/s).

PostgreSQL is the machine's own at 127.0.0.1:5432; the measure is skipped, saying so,
where none answers. The plans PostgreSQL chose for the timeline are printed after the
table.
"""

from __future__ import annotations

import asyncio
import getpass
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from bench_http import API, ROOT, Connection, multipart_body, query
from bench_servers import TubeiServer, environment
from bench_table import Row, Run, at_least, at_most, expect, median, rotated
from bench_timeline import PAGE, deep_cursors, fill_catalog, small_photo, synthetic_rows

from server.catalog.postgres import PostgresCatalog

HOST, PORT = "127.0.0.1", 5432
INGEST_BATCH = 10


def admin_url() -> str | None:
    for user in ("postgres", getpass.getuser(), "root"):
        url = f"postgresql://{user}@{HOST}:{PORT}/postgres"
        try:
            with psycopg.connect(url, connect_timeout=2):
                return url
        except psycopg.Error:
            continue
    return None


class PostgresServer(TubeiServer):
    """A Tubei server whose catalog is a PostgreSQL database."""

    def __init__(self, workdir: Path, label: str, catalog: str) -> None:
        super().__init__(workdir, label)
        self.catalog = catalog

    def command(self) -> list[str]:
        return [*super().command(), "--catalog", self.catalog]

    def token(self, user: str = "bench") -> str:
        if user not in self.tokens:
            made = subprocess.run(
                [sys.executable, "-m", "server", "token", "--data", str(self.data),
                 "--catalog", self.catalog, "--user", user],
                cwd=ROOT, env=environment(), capture_output=True, text=True, check=True,
            )  # fmt: skip
            self.tokens[user] = made.stdout.strip().rsplit("\n", 1)[-1]
        return self.tokens[user]


def fill_postgres(url: str, count: int) -> None:
    """The same rows as the SQLite catalog's, by COPY, into a freshly migrated database."""

    async def bench_user() -> int:
        catalog = PostgresCatalog(url)
        await catalog.start()
        try:
            return (await catalog.ensure_user("bench")).id
        finally:
            await catalog.close()

    user_id = asyncio.run(bench_user())
    now = time.time()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY blobs (sha256, md5, size, format, mime, width, height, orientation, "
                "taken_at, camera_make, camera_model, has_gps, decodable, thumbnail, "
                "created_at) FROM STDIN"
            ) as copy:
                for blob, _ in synthetic_rows(count, now):
                    copy.write_row([*blob[:11], bool(blob[11]), bool(blob[12]), bool(blob[13]),
                                    blob[14]])  # fmt: skip
            with cursor.copy(
                "COPY entries (user_id, sha256, md5, filename, uploaded_at, taken_ts) FROM STDIN"
            ) as copy:
                for _, entry in synthetic_rows(count, now):
                    copy.write_row([user_id, *entry])
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE entries")
        conn.execute("VACUUM ANALYZE blobs")
        found = conn.execute("SELECT count(*) FROM entries WHERE user_id = %s", (user_id,))
        row = found.fetchone()
        expect(row is not None and row[0] == count, "PostgreSQL lost rows while it was filled")


def plans(url: str) -> dict[str, list[str]]:
    async def ask() -> dict[str, list[str]]:
        catalog = PostgresCatalog(url)
        await catalog.start()
        try:
            return await catalog.query_plans()
        finally:
            await catalog.close()

    return asyncio.run(ask())


def case_catalog(run: Run) -> list[Row]:
    """List pages and ingest on PostgreSQL against SQLite, at 1M photos, same run."""
    admin = admin_url()
    if admin is None:
        run.say(f"catalog: no PostgreSQL answers at {HOST}:{PORT}; skipped")
        return []
    count = run.scale.list_sizes[1]
    requests = max(10, run.scale.list_requests // 2)
    photos = max(40, run.scale.reps * 10)
    name = f"tubei_bench_{uuid.uuid4().hex[:12]}"
    url = admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    servers: dict[str, TubeiServer] = {}
    pages: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    try:
        started = time.perf_counter()
        data = fill_catalog(run.workdir / "catalog-sqlite", count)
        fill_postgres(url, count)
        run.say(f"catalog: {count} photos in both in {time.perf_counter() - started:.0f} s")
        for step, lines in plans(url).items():
            run.notes.append(f"PostgreSQL plan, {step}: " + "; ".join(s.strip() for s in lines))
        servers["sqlite"] = TubeiServer(run.workdir, "catalog-sqlite", data)
        servers["postgresql"] = PostgresServer(run.workdir, "catalog-postgresql", url)
        for server in servers.values():
            server.start()
        rng = random.Random(11)
        deep = deep_cursors(data, count, requests, rng)
        connections = {kind: Connection(server.port) for kind, server in servers.items()}

        def page(kind: str, cursor: str | None) -> str | None:
            params: dict[str, object] = {"limit": PAGE}
            if cursor is not None:
                params["cursor"] = cursor
            began = time.perf_counter()
            answer = connections[kind].request(
                "GET", query(f"{API}/images", **params), servers[kind].auth()
            )
            pages[kind].append((time.perf_counter() - began) * 1000)
            expect(answer.status == 200, f"{kind} page: {answer.status} {answer.body[:200]!r}")
            body = answer.json()
            assert isinstance(body, dict)
            expect(len(body["items"]) == PAGE, f"{kind}: a page of {len(body['items'])}")
            following: str | None = body["next_cursor"]
            return following

        for n in range(requests + 3):
            for kind in rotated(["sqlite", "postgresql"], n):
                following = page(kind, None)
                for _ in range(3):
                    following = page(kind, following)
                page(kind, deep[n % requests])
            if n < 3:  # the first rounds warm up
                for kept in pages.values():
                    kept.clear()

        def ingest(kind: str, batch: int) -> None:
            began = time.perf_counter()
            for k in range(INGEST_BATCH):
                tag = f"{kind}-{batch}-{k}-{uuid.uuid4().hex}"
                body, content_type = multipart_body(f"{tag}.jpg", [small_photo(tag)])
                answer = connections[kind].request(
                    "POST", f"{API}/images",
                    {**servers[kind].auth(), "Content-Type": content_type}, body,
                )  # fmt: skip
                expect(answer.status == 200, f"{kind} upload: {answer.status}")
            rates[kind].append(INGEST_BATCH / (time.perf_counter() - began))

        for batch in range(photos // INGEST_BATCH + 1):
            for kind in rotated(["sqlite", "postgresql"], batch):
                ingest(kind, batch)
            if batch == 0:  # warm-up
                for kept in rates.values():
                    kept.clear()
    finally:
        for server in servers.values():
            server.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    millions = f"{count / 1e6:g}M photos"
    return [
        Row(
            f"catalog: list pages on PostgreSQL, {millions}",
            median(pages["postgresql"]),
            "ms",
            median(pages["sqlite"]),
            "SQLite",
            at_most(1.5),
            detail="first, next and 90%-deep pages, median",
        ),
        Row(
            "catalog: ingest on PostgreSQL, small photos one by one",
            median(rates["postgresql"]),
            "photos/s",
            median(rates["sqlite"]),
            "SQLite",
            at_least(0.8),
            detail=f"POST /images, {millions} in the catalog",
        ),
    ]
