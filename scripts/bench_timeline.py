"""`scripts/bench --only timeline`: the gallery's requests at a million photos against a thousand.

Two servers run side by side, `python -m server serve` each, one over a catalog of
1k photos and one over 1M (rows in `blobs` and `entries` as `add_image` makes them;
no files). Requests alternate between them, through the same client: the first page,
the next pages as a scrolling gallery asks, a page 90% deep (900k of 1M, 900 of 1k)
by cursor, `/images/check` with 1,000 hashes (half of them present) by sha256 and by
md5, and `image.added` fan-out: from sending a small photo until every one of the
listening sockets has heard of it. Each figure is the median of its runs. SQLite's
plan for each query is printed after the table (docs/performance.md reads them).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tornado.websocket
from bench_http import API, HOST, Connection, multipart_body, query
from bench_servers import TubeiServer
from bench_table import Row, Run, at_most, expect, median, rotated
from PIL import Image

from server.catalog import sort_time
from server.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from server.services.library import encode_cursor

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tubei-bench"
PAGE = 100
DEPTH = 0.9
CHECK = 1000
LISTENERS = 20
FILL_FORMAT = "3"  # what fill_catalog writes; change it when the rows change

# the catalog ---------------------------------------------------------------------------


def synthetic_rows(count: int, now: float) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(blobs row, entries row) for `count` phone photos; the same every time for a count."""
    rng = random.Random(count)
    for n in range(count):
        sha = photo_sha256(count, n)
        taken = None
        if rng.random() < 0.9:
            moment = datetime.datetime(2010, 1, 1) + datetime.timedelta(
                seconds=rng.randrange(5 * 10**8)
            )
            taken = moment.isoformat() + rng.choice(("+08:00", "Z", ""))
        uploaded = now - n
        blob = (
            sha,
            photo_md5(sha),
            rng.randrange(1_000_000, 6_000_000),
            "JPEG",
            "image/jpeg",
            4032,
            3024,
            rng.choice((1, 6)),
            taken,
            "Bench",
            "Camera 12",
            int(rng.random() < 0.5),
            1,
            1,
            uploaded,
        )
        yield blob, (sha, blob[1], f"IMG_{n:07d}.jpg", uploaded, sort_time(taken, uploaded))


def photo_sha256(count: int, n: int) -> str:
    return hashlib.sha256(f"{count}-{n}".encode()).hexdigest()


def photo_md5(sha: str) -> str:
    return hashlib.md5(sha.encode()).hexdigest()


def fill_catalog(folder: Path, count: int) -> Path:
    """A data folder whose catalog lists `count` photos of the user `bench`.

    The schema is the server's (SQLiteCatalog migrates a new file); the rows go in
    with one executemany a table in one transaction, on tmpfs where there is one: 1M
    photos in about half a minute. The result is kept in ~/.cache/tubei-bench under a name
    that changes with the migrations, and made again whenever they change.
    """
    key = hashlib.sha256("\n".join([FILL_FORMAT, *MIGRATIONS]).encode()).hexdigest()[:16]
    cached = CACHE / f"catalog-{count}-{key}.sqlite3"
    folder.mkdir(parents=True, exist_ok=True)
    if not cached.exists():
        shm = Path("/dev/shm")
        scratch = Path(tempfile.mkdtemp(prefix="tubei-fill-", dir=shm if shm.is_dir() else None))
        try:
            write_catalog(scratch / "catalog.sqlite3", count)
            CACHE.mkdir(parents=True, exist_ok=True)
            for old in CACHE.glob(f"catalog-{count}-*.sqlite3"):
                old.unlink()
            shutil.copyfile(scratch / "catalog.sqlite3", cached.with_suffix(".partial"))
            cached.with_suffix(".partial").rename(cached)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    shutil.copyfile(cached, folder / "catalog.sqlite3")
    return folder


def write_catalog(path: Path, count: int) -> None:
    async def bench_user() -> int:
        catalog = SQLiteCatalog(path)
        try:
            return (await catalog.ensure_user("bench")).id
        finally:
            await catalog.close()

    user_id = asyncio.run(bench_user())
    db = sqlite3.connect(path, isolation_level=None)
    try:
        # Nothing here needs to survive a crash: a rollback journal (rather than a WAL
        # as large as the file) and no syncs, then back to WAL, as the server keeps it.
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -1048576")
        db.execute("BEGIN")
        now = time.time()
        db.executemany(
            "INSERT INTO blobs (sha256, md5, size, format, mime, width, height, orientation, "
            "taken_at, camera_make, camera_model, has_gps, decodable, thumbnail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (blob for blob, _ in synthetic_rows(count, now)),
        )
        db.executemany(
            "INSERT INTO entries (user_id, sha256, md5, filename, uploaded_at, taken_ts) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((user_id, *entry) for _, entry in synthetic_rows(count, now)),
        )
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode = WAL")
        found = db.execute("SELECT count(*) FROM entries WHERE user_id = ?", (user_id,))
        expect(found.fetchone()[0] == count, "the catalog lost rows while it was filled")
    finally:
        db.close()


def deep_cursors(folder: Path, count: int, picks: int, rng: random.Random) -> list[str]:
    """Cursors `DEPTH` of the way down the timeline, each with a full page after it."""
    deepest = count - PAGE - 1
    low = min(int(count * DEPTH), deepest)
    high = min(low + count // 100, deepest)
    db = sqlite3.connect(f"file:{folder / 'catalog.sqlite3'}?mode=ro", uri=True)
    try:
        keys = db.execute(
            "SELECT taken_ts, sha256 FROM entries WHERE deleted_at IS NULL "
            "ORDER BY taken_ts DESC, sha256 DESC LIMIT ? OFFSET ?",
            (high - low + 1, low),
        ).fetchall()
    finally:
        db.close()
    return [encode_cursor(tuple(rng.choice(keys))) for _ in range(picks)]


def check_body(count: int, field: str, rng: random.Random) -> bytes:
    """1,000 distinct hashes, every other one in the library."""
    present = iter(rng.sample(range(count), CHECK // 2))
    hashes = []
    for k in range(CHECK):
        if k % 2:
            sha = photo_sha256(count, next(present))
        else:
            sha = hashlib.sha256(f"absent-{rng.random()}".encode()).hexdigest()
        hashes.append(sha if field == "sha256" else photo_md5(sha))
    return json.dumps({field: hashes}).encode()


def query_plans(folder: Path) -> dict[str, list[str]]:
    async def plans() -> dict[str, list[str]]:
        catalog = SQLiteCatalog(folder / "catalog.sqlite3")
        try:
            return await catalog.query_plans()
        finally:
            await catalog.close()

    return asyncio.run(plans())


# image.added, heard by many sockets --------------------------------------------------


class Listeners:
    """`count` events sockets of one user, on an event loop of their own in a thread."""

    def __init__(self, port: int, token: str, count: int) -> None:
        self.url = f"ws://{HOST}:{port}{API}/events?token={token}"
        self.count = count
        self.heard: dict[str, list[float]] = {}  # image id: perf_counter() of each socket
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Listeners:
        self._thread.start()
        if not self._ready.wait(60) or self._failure is not None:
            raise RuntimeError(f"the events sockets did not connect: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            sockets = [
                await tornado.websocket.websocket_connect(self.url) for _ in range(self.count)
            ]
            for socket_ in sockets:
                hello = await socket_.read_message()
                expect(isinstance(hello, str) and '"hello"' in hello, f"first event {hello!r}")
        except BaseException as error:
            self._failure = error
            self._ready.set()
            return
        readers = [asyncio.create_task(self._read(s)) for s in sockets]
        self._ready.set()
        await self._stop.wait()
        for socket_ in sockets:
            socket_.close()
        await asyncio.gather(*readers, return_exceptions=True)

    async def _read(self, socket_: tornado.websocket.WebSocketClientConnection) -> None:
        while (message := await socket_.read_message()) is not None:
            at = time.perf_counter()
            event = json.loads(message)
            if event["type"] == "image.added":
                with self._changed:
                    self.heard.setdefault(event["image"]["id"], []).append(at)
                    self._changed.notify_all()

    def all_heard(self, sha: str, timeout: float = 30) -> float:
        """perf_counter() when the last socket heard of `sha`."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: len(self.heard.get(sha, ())) >= self.count, timeout
            )
            expect(done, f"image.added for {sha} reached {len(self.heard.get(sha, ()))} sockets")
            return max(self.heard.pop(sha))


def small_photo(tag: str) -> bytes:
    """A real, small, unique JPEG: its thumbnails take a few milliseconds."""
    out = io.BytesIO()
    Image.new("RGB", (96, 72), (60, 140, 90)).save(out, "JPEG", comment=tag.encode())
    return out.getvalue()


def announce_ms(
    tubei: TubeiServer, connection: Connection, listeners: Listeners, tag: str
) -> float:
    body, content_type = multipart_body(f"{tag}.jpg", [small_photo(tag)])
    started = time.perf_counter()
    answer = connection.request(
        "POST", f"{API}/images", {**tubei.auth(), "Content-Type": content_type}, body
    )
    expect(answer.status == 200, f"upload: {answer.status} {answer.body[:200]!r}")
    sha = answer.json()["items"][0]["sha256"]  # type: ignore[index]
    return (listeners.all_heard(sha) - started) * 1000


# the measure ---------------------------------------------------------------------------


def case_timeline(run: Run) -> list[Row]:
    """Gallery requests and fan-out at 1M photos against 1k, through `python -m server`."""
    small, big = run.scale.list_sizes
    requests = run.scale.list_requests
    rng = random.Random(7)
    servers: dict[int, TubeiServer] = {}
    latencies: dict[tuple[int, str], list[float]] = {}
    try:
        for count in (small, big):
            started = time.perf_counter()
            data = fill_catalog(run.workdir / f"timeline-{count}", count)
            run.say(f"timeline: {count} photos ready in {time.perf_counter() - started:.1f} s")
            if count == big:
                for name, steps in query_plans(data).items():
                    run.notes.append(f"plan, {name}: " + "; ".join(steps))
            # One device holds all the listening sockets (by default it may keep 5).
            extra = ["--max-sockets-per-device", str(LISTENERS)]
            servers[count] = TubeiServer(run.workdir, f"timeline-{count}", data, extra)
            servers[count].start()
        deep = {n: deep_cursors(s.data, n, requests, rng) for n, s in servers.items()}
        connections = {count: Connection(server.port) for count, server in servers.items()}

        def timed(count: int, kind: str, method: str, path: str, body: bytes = b"") -> Any:
            headers = servers[count].auth()
            if body:
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            answer = connections[count].request(method, path, headers, [body] if body else ())
            latencies.setdefault((count, kind), []).append((time.perf_counter() - started) * 1000)
            expect(answer.status == 200, f"{kind}: {answer.status} {answer.body[:200]!r}")
            return answer.json()

        def page(count: int, kind: str, cursor: str | None) -> str | None:
            params: dict[str, object] = {"limit": PAGE}
            if cursor is not None:
                params["cursor"] = cursor
            body = timed(count, kind, "GET", query(f"{API}/images", **params))
            expect(len(body["items"]) == PAGE, f"{kind}: a page of {len(body['items'])}")
            return body["next_cursor"]

        with run.profiling(servers[big], "timeline"):
            for n in range(requests + 5):
                for count in rotated([small, big], n):
                    following = page(count, "first", None)
                    for _ in range(3):  # the next pages, as infinite scroll asks
                        following = page(count, "next", following)
                    page(count, "deep", deep[count][n % requests])
                    shape = timed(count, "months", "GET", f"{API}/timeline")
                    expect(shape["total"] == count, f"months: a total of {shape['total']}")
                    for field in ("sha256", "md5"):
                        answer = timed(
                            count, f"check {field}", "POST", f"{API}/images/check",
                            check_body(count, field, rng),
                        )  # fmt: skip
                        expect(
                            len(answer["present"]) == CHECK // 2,
                            f"check {field}: {len(answer['present'])}",
                        )
                if n < 5:  # the first rounds warm up
                    latencies.clear()
            fan_out(servers, requests, latencies)
    finally:
        for server in servers.values():
            server.stop()
    names = {
        "first": "first page",
        "next": "next pages (next_cursor)",
        "deep": f"a page {DEPTH:.0%} deep (cursor)",
        "check sha256": f"/images/check, {CHECK} sha256",
        "check md5": f"/images/check, {CHECK} md5",
        "fanout": f"image.added heard by {LISTENERS} sockets, from the upload",
    }
    # The months count every photo of the library once (a seek per month, then a count of
    # each month's range of the index): no b-tree gives a count without reading it, so
    # this row grows with the library and is shown without a target.
    months = Row(
        f"timeline: GET /timeline (months and counts), {photos(big)}",
        median(latencies[(big, "months")]),
        "ms",
        median(latencies[(small, "months")]),
        photos(small),
        detail="a seek per month, a count of each month's index range; median",
    )
    return [
        Row(
            f"timeline: {name}, {photos(big)}",
            median(latencies[(big, kind)]),
            "ms",
            median(latencies[(small, kind)]),
            photos(small),
            at_most(1.5),
            f"limit {PAGE}, median" if kind in ("first", "next", "deep") else "median",
        )
        for kind, name in names.items()
    ] + [months]


def photos(count: int) -> str:
    return f"{count // 10**6}M photos" if count >= 10**6 else f"{count // 1000}k photos"


def fan_out(
    servers: dict[int, TubeiServer],
    uploads: int,
    latencies: dict[tuple[int, str], list[float]],
) -> None:
    """ms from sending a small photo until all LISTENERS sockets have heard its `image.added`."""
    connections = {count: Connection(server.port) for count, server in servers.items()}
    with contextlib.ExitStack() as stack:
        listeners = {
            count: stack.enter_context(Listeners(server.port, server.token(), LISTENERS))
            for count, server in servers.items()
        }
        for n in range(uploads + 3):
            for count in rotated(list(servers), n):
                server = servers[count]
                tag = f"fanout-{server.label}-{n}"
                ms = announce_ms(server, connections[count], listeners[count], tag)
                if n >= 3:  # the first rounds warm up
                    latencies.setdefault((count, "fanout"), []).append(ms)
