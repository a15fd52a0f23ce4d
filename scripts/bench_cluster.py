"""`scripts/bench --only cluster`: three `serve` processes on two cores against one.

Each run is either ONE `python -m server serve` behind nginx or THREE, started for the
run and stopped after it, all on one data folder, one PostgreSQL catalog (a database
made for the measure on the machine's PostgreSQL at 127.0.0.1:5432, dropped at the
end) and one Redis database index of the machine's Redis at 127.0.0.1:6379, as
docs/scale-out.md sets them up; nginx runs from docs/nginx/tubei.conf
(scripts/nginx_proxy.py). The client load is the same in both, always through nginx:

- photos acknowledged a second: 8 connections POST small distinct JPEGs (multipart),
  each taking the next photo as its answer comes;
- list pages a second: 8 connections walk GET /api/v1/images?limit=100 and its next
  pages (five pages deep, then from the first again) over a library of 500 and more.

Runs of the two go in pairs, back to back, which one first alternating; each figure is
the median of its runs and each ratio the median of the pairs' ratios (the load of a
shared machine drifts more between pairs than within one). The client runs in this
process (threads, `bench_http.Connection`) on the same two cores: the CPU it used is
printed after the table, so the ratio can be read against it. Skipped, saying so,
when nginx, PostgreSQL or Redis is missing.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from bench_catalog import HOST, PORT, PostgresServer, admin_url
from bench_http import API, Connection, multipart_body, query
from bench_table import INFO, Row, Run, at_least, expect, median, rotated
from bench_timeline import PAGE, small_photo
from nginx_proxy import NginxProxy, NginxUnavailable, nginx_binary

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CLIENTS = 8
WALK_DEPTH = 5  # pages a client walks before it starts from the first again
SEED_PHOTOS = WALK_DEPTH * PAGE  # the library list pages walk, uploaded before the runs
KINDS = ("one", "three")
CORES = os.cpu_count() or 2


class ClusterNode(PostgresServer):
    """One `serve` process of the cluster: the shared folder, catalog and Redis."""

    def __init__(
        self, workdir: Path, label: str, data: Path, catalog: str, events: str, decoders: int
    ) -> None:
        super().__init__(workdir, label, catalog)
        self.data = data
        self.extra = ["--events", events, "--trust-forwarded", "--decode-workers", str(decoders)]


def redis_answers() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def missing() -> str | None:
    """Why the measure cannot run here, or None."""
    try:
        nginx_binary("the cluster measure")
    except (NginxUnavailable, OSError) as error:
        return str(error)
    if admin_url() is None:
        return f"no PostgreSQL answers at {HOST}:{PORT}"
    if not redis_answers():
        return f"no Redis answers at {REDIS_HOST}:{REDIS_PORT}"
    return None


def drive(port: int, count: int, work: Callable[[Connection, int], None]) -> float:
    """CLIENTS connections through `port` do `work(connection, n)` for n < count; seconds."""
    jobs = iter(range(count))
    lock = threading.Lock()
    errors: list[str] = []
    start = threading.Barrier(CLIENTS + 1)
    done: list[float] = []

    def client() -> None:
        connection = Connection(port)
        start.wait()
        while True:
            with lock:
                n = next(jobs, None)
            if n is None:
                break
            try:
                work(connection, n)
            except Exception as error:
                errors.append(f"{n}: {error!r}")
            done.append(time.perf_counter())
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    expect(not errors, f"cluster requests failed: {errors[:5]}")
    return max(done) - began


def upload(auth: dict[str, str], tag: str) -> Callable[[Connection, int], None]:
    def work(connection: Connection, n: int) -> None:
        name = f"{tag}-{n}-{uuid.uuid4().hex}"
        body, content_type = multipart_body(f"{name}.jpg", [small_photo(name)])
        answer = connection.request(
            "POST", f"{API}/images", {**auth, "Content-Type": content_type}, body
        )
        expect(answer.status == 200, f"upload: {answer.status} {answer.body[:200]!r}")

    return work


def walk(auth: dict[str, str]) -> Callable[[Connection, int], None]:
    """Each connection's next page: the first, then next_cursor, WALK_DEPTH deep."""
    cursors: dict[int, tuple[int, str | None]] = {}

    def work(connection: Connection, n: int) -> None:
        depth, cursor = cursors.get(id(connection), (0, None))
        params: dict[str, object] = {"limit": PAGE}
        if cursor is not None:
            params["cursor"] = cursor
        answer = connection.request("GET", query(f"{API}/images", **params), auth)
        expect(answer.status == 200, f"list: {answer.status} {answer.body[:200]!r}")
        page = answer.json()
        assert isinstance(page, dict)
        expect(len(page["items"]) == PAGE, f"a page of {len(page['items'])}")
        following: str | None = page["next_cursor"]
        depth += 1
        cursors[id(connection)] = (0, None) if depth >= WALK_DEPTH else (depth, following)

    return work


@contextmanager
def cluster(
    run: Run, label: str, processes: int, data: Path, url: str, events: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """`processes` serve processes and nginx in front: (nginx's port, an Authorization)."""
    decoders = max(1, CORES // processes)  # N x --decode-workers near the cores (scale-out.md)
    nodes = [
        ClusterNode(run.workdir, f"{label}-{n}", data, url, events, decoders)
        for n in range(processes)
    ]
    proxy: NginxProxy | None = None
    try:
        for node in nodes:
            node.start()
        proxy = NginxProxy(run.workdir / f"{label}-nginx", [node.port for node in nodes])
        proxy.start()
        yield proxy.port, nodes[0].auth()
    finally:
        if proxy is not None:
            proxy.stop()
        for node in nodes:
            node.stop()


def paired(figures: dict[str, list[float]]) -> float:
    """The median of each pair's ratio, three over one: the two ran back to back."""
    pairs = zip(figures["one"], figures["three"], strict=True)
    return median([three / one for one, three in pairs])


def case_cluster(run: Run) -> list[Row]:
    """Photos acknowledged and list pages a second: three processes against one, via nginx."""
    problem = missing()
    if problem is not None:
        run.say(f"cluster: {problem}; skipped")
        return []
    admin = admin_url()
    assert admin is not None
    name = f"tubei_bench_{uuid.uuid4().hex[:12]}"
    url = admin.rsplit("/", 1)[0] + "/" + name
    events = f"redis://{REDIS_HOST}:{REDIS_PORT}/{random.randrange(1, 16)}"
    data = run.workdir / "cluster-data"
    photos = run.scale.photos * 8
    pages = run.scale.list_requests * 16
    pairs = 2 * run.scale.reps - 1  # 3 quick, 5 full: a median of pairs
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    listed: dict[str, list[float]] = {kind: [] for kind in KINDS}
    client_cpu: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with cluster(run, "cluster-seed", 1, data, url, events) as (port, auth):
            drive(port, SEED_PHOTOS, upload(auth, "seed"))
        for rep in range(pairs):
            for kind in rotated(list(KINDS), rep):
                processes = 1 if kind == "one" else 3
                with cluster(run, f"cluster-{kind}-{rep}", processes, data, url, events) as (
                    port,
                    auth,
                ):
                    drive(port, CLIENTS, walk(auth))  # warm: every process's first request
                    cpu = time.process_time()
                    seconds = drive(port, photos, upload(auth, f"{kind}-{rep}"))
                    rates[kind].append(photos / seconds)
                    seconds = drive(port, pages, walk(auth))
                    listed[kind].append(pages / seconds)
                    client_cpu[kind].append(time.process_time() - cpu)
                run.say(
                    f"cluster rep {rep}, {kind}: {rates[kind][-1]:.0f} photos/s, "
                    f"{listed[kind][-1]:.0f} pages/s"
                )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for kind in KINDS:
        run.notes.append(
            f"cluster, {kind}: the client's own CPU, median of runs: "
            f"{median(client_cpu[kind]):.1f} s a run ({photos} uploads and {pages} pages)"
        )
    detail = f"{CLIENTS} clients through nginx; the ratio: median of {pairs} pairs' ratios"
    return [
        Row(
            "cluster: photos acknowledged, 3 processes vs 1",
            median(rates["three"]),
            "photos/s",
            median(rates["one"]),
            "1 process",
            at_least(1.0),
            f"small JPEGs, {photos} a run, {detail}",
            paired_ratio=paired(rates),
        ),
        Row(
            "cluster: list pages, 3 processes vs 1",
            median(listed["three"]),
            "pages/s",
            median(listed["one"]),
            "1 process",
            INFO,
            f"limit={PAGE}, {WALK_DEPTH} pages deep, {pages} a run, {detail}",
            paired_ratio=paired(listed),
        ),
    ]
