"""`scripts/bench --only load`: 50 uploaders and 200 open event sockets for a while.

No request may fail and no socket drop; every acknowledged photo must be listed and
announced; the server's memory must stop rising once every uploader is under way.
The uploaders run in processes of their own (`bench_uploaders`); the baseline's rate
is the raw handler's under the same uploaders.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench_http import API, Connection, query
from bench_memory import RssSampler
from bench_run import Bench, MiB
from bench_servers import RawServer, TubeiServer
from bench_sockets import EventWatcher
from bench_table import INFO, Row, Target, expect, median
from bench_uploaders import Job, uploaders

# load ----------------------------------------------------------------------------------

LOAD_USERS = 5
LOAD_UPLOADERS = 50  # a fifth of them tus
LOAD_SOCKETS = 200
LOAD_PROCESSES = 2


def load_jobs(tokens: dict[str, str], kind_of: Callable[[int], str]) -> list[list[Job]]:
    users = sorted(tokens)
    jobs = [
        Job(users[n % len(users)], tokens[users[n % len(users)]], kind_of(n), f"load-{n}")
        for n in range(LOAD_UPLOADERS)
    ]
    return [jobs[p::LOAD_PROCESSES] for p in range(LOAD_PROCESSES)]


def run_uploaders(
    port: int, groups: list[list[Job]], photo: Path, seconds: float
) -> dict[str, object]:
    """The uploaders, in processes of their own; their results put together."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(groups), mp_context=context) as pool:
        futures = [pool.submit(uploaders, port, group, photo, seconds) for group in groups]
        results = [future.result() for future in futures]
    acked: dict[str, list[str]] = {}
    errors: list[str] = []
    latencies: list[tuple[float, float]] = []
    for result in results:
        for user, shas in result["acked"].items():  # type: ignore[attr-defined]
            acked.setdefault(user, []).extend(shas)
        errors += result["errors"]  # type: ignore[arg-type]
        latencies += result["latencies"]  # type: ignore[arg-type]
    return {"acked": acked, "errors": errors, "latencies": latencies}


def listed_ids(tubei: TubeiServer, user: str) -> set[str]:
    connection = Connection(tubei.port)
    found: set[str] = set()
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        answer = connection.request("GET", query(f"{API}/images", **params), tubei.auth(user))
        expect(answer.status == 200, f"list: {answer.status}")
        page = answer.json()
        assert isinstance(page, dict)
        found.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def case_load(bench: Bench) -> list[Row]:
    """50 uploaders and 200 open event sockets for a while: no errors, memory bounded, all kept."""
    seconds = bench.scale.load_seconds
    photo = bench.load_jpeg()
    # The sockets share the users' tokens: a device may hold LOAD_SOCKETS / LOAD_USERS.
    per_device = ["--max-sockets-per-device", str(LOAD_SOCKETS // LOAD_USERS)]
    with TubeiServer(bench.workdir, "load", extra=per_device) as tubei:
        tokens = {f"user{n}": tubei.token(f"user{n}") for n in range(LOAD_USERS)}
        users = sorted(tokens)
        sockets = [
            (users[n % len(users)], tokens[users[n % len(users)]]) for n in range(LOAD_SOCKETS)
        ]
        watcher = EventWatcher(tubei.port, sockets)
        watcher.start()
        groups = load_jobs(tokens, lambda n: "tus" if n % 5 == 4 else "multipart")
        bench.say(f"load: {LOAD_UPLOADERS} uploaders, {LOAD_SOCKETS} sockets, {seconds:.0f} s")
        started = time.monotonic()
        with RssSampler(tubei, every=0.25) as sampler, bench.profiling(tubei, "load"):
            result = run_uploaders(tubei.port, groups, photo, seconds)
        took = time.monotonic() - started
        acked: dict[str, list[str]] = result["acked"]  # type: ignore[assignment]
        errors: list[str] = result["errors"]  # type: ignore[assignment]
        latencies: list[tuple[float, float]] = sorted(result["latencies"])  # type: ignore[arg-type]
        third = max(1, len(latencies) // 3)
        early = median([seconds for _, seconds in latencies[:third]])
        late = median([seconds for _, seconds in latencies[-third:]])
        stored = sum(len(shas) for shas in acked.values())
        bench.say(f"load: {stored} photos acknowledged, {len(errors)} errors; checking")
        expected = {user: set(shas) for user, shas in acked.items()}
        unheard = watcher.wait_for(expected, timeout=180)
        watcher.stop()
        closed = [f"socket {n}: {s.closed}" for n, s in enumerate(watcher.sockets) if s.closed]
        missing = 0
        for user, shas in expected.items():
            missing += len(shas - listed_ids(tubei, user))
        # A sample of originals, byte for byte.
        connection = Connection(tubei.port)
        for user, shas in acked.items():
            for sha in shas[:: max(1, len(shas) // 5)]:
                answer = connection.request("GET", f"{API}/images/{sha}/original", tubei.auth(user))
                expect(
                    answer.status == 200 and hashlib.sha256(answer.body).hexdigest() == sha,
                    f"original {sha}: {answer.status}",
                )
        # Bounded: once every uploader is under way (the first third), the peak stops rising.
        samples = sampler.samples
        start_rss, t0 = samples[0][1], samples[0][0]
        span = (samples[-1][0] - t0) or 1.0

        def peak(low: float, high: float) -> int:
            inside = [rss for t, rss in samples if low <= (t - t0) / span <= high]
            return max(inside, default=start_rss)

        middle, last = peak(1 / 3, 2 / 3), peak(2 / 3, 1)
    with RawServer(bench.workdir, "load-raw") as raw:
        raw_groups = load_jobs({u: "" for u in users}, lambda n: "raw")
        raw_result = run_uploaders(raw.port, raw_groups, photo, bench.scale.load_raw_seconds)
        raw_count = sum(len(v) for v in raw_result["acked"].values())  # type: ignore[attr-defined]
        raw_rate = raw_count / bench.scale.load_raw_seconds
        for leftover in raw.folder.glob("*.upload"):
            leftover.unlink()
    for line in [*errors[:10], *closed[:10], *unheard[:10]]:
        bench.notes.append(f"load: {line}")
    detail = (
        f"{LOAD_UPLOADERS} uploaders, {LOAD_SOCKETS} sockets, {seconds:.0f} s; 3-MP photos; "
        f"median time to acknowledge {early:.2f} s in the first third, {late:.2f} s in the last"
    )
    zero = Target("value", "==", 0, "0")
    return [
        Row(
            "load: uploads acknowledged", stored / took, "uploads/s", raw_rate, "raw", INFO, detail
        ),
        Row(
            "load: failed requests and dropped sockets", len(errors) + len(closed), "", target=zero
        ),
        Row(
            "load: acknowledged but not listed, or not announced",
            missing + len(unheard),
            "",
            target=zero,
            detail=f"{stored} photos, {len(watcher.sockets)} sockets",
        ),
        Row(
            "load: server memory, last third's peak over the middle third's",
            (last - middle) / MiB,
            "MiB",
            target=Target("value", "<", 16, "< 16 MiB"),
            detail=f"peak {(max(middle, last) - start_rss) / MiB:.0f} MiB over the start",
        ),
    ]
