"""`scripts/bench --only redis`: what Redis fan-out adds to an event's delivery.

An event's delivery is the time from `publish()` to the moment a socket's pump has
it from its mailbox. Through the local hub that happens in the publishing process;
through Redis the listener is another process (as a socket on another server would
be), with its own `RedisEventHub`, and the event goes publish -> outbox -> PUBLISH
-> Redis -> the listener's subscription -> its mailbox. Both clocks are the machine's
CLOCK_MONOTONIC, so the listener can subtract the publisher's timestamp.

Events are published at a steady pace (progress-like: small, one every 2 ms), runs
of the two hubs alternate, and the figures are percentiles over all runs of each.
Redis is a redis-server of the bench's own on a free port (or the machine's at
127.0.0.1:6379 when there is no redis-server binary).

    python scripts/bench_events.py listen URL PREFIX    the listening process
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_table import Row, Target

from server.services.events import LocalEventHub, Mailbox
from server.services.events_redis import RedisEventHub

if TYPE_CHECKING:
    from bench_run import Bench

USER = 1
PACE = 0.002  # seconds between events
WARMUP = 50  # first events of a run, not counted
TARGET_MS = 5.0
END = "bench.end"


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def event(n: int) -> dict[str, Any]:
    return {
        "type": "upload.progress",
        "upload_id": f"bench-{n}",
        "received": n * 65536,
        "total": 1 << 30,
        "t": time.monotonic_ns(),
    }


async def drain(mailbox: Mailbox, latencies: list[float]) -> None:
    """What a socket's pump does, timing each event it gets."""
    while True:
        got = await mailbox.get()
        if got is None or got["type"] == END:
            return
        latencies.append((time.monotonic_ns() - got["t"]) / 1e6)


async def publish_paced(hub: Any, count: int) -> None:
    # Each event is a transfer of its own, so that none coalesces with another while it
    # waits: every one published is one delivered, and timed.
    for n in range(count):
        hub.publish(USER, event(n))
        await asyncio.sleep(PACE)
    hub.publish(USER, {"type": END})


async def local_run(count: int) -> list[float]:
    hub = LocalEventHub()
    mailbox = hub.subscribe(USER)
    latencies: list[float] = []
    reader = asyncio.create_task(drain(mailbox, latencies))
    await publish_paced(hub, count)
    await reader
    return latencies[WARMUP:]


async def redis_run(url: str, prefix: str, count: int) -> list[float]:
    listener = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "listen",
        url,
        prefix,
        stdout=asyncio.subprocess.PIPE,
    )
    assert listener.stdout is not None
    ready = await asyncio.wait_for(listener.stdout.readline(), 30)
    if ready.strip() != b"ready":
        raise RuntimeError(f"the listening process did not start: {ready!r}")
    hub = RedisEventHub(url, prefix=prefix)
    await hub.start()
    try:
        await publish_paced(hub, count)
        out, _ = await asyncio.wait_for(listener.communicate(), 60)
    finally:
        await hub.close()
        if listener.returncode is None:
            listener.kill()
    latencies: list[float] = json.loads(out)
    if len(latencies) != count:
        raise RuntimeError(f"{count} events published, {len(latencies)} heard through Redis")
    if hub.dropped:
        raise RuntimeError(f"{hub.dropped} events dropped on the way to Redis")
    return latencies[WARMUP:]


async def listen(url: str, prefix: str) -> None:
    hub = RedisEventHub(url, prefix=prefix)
    await hub.start()
    mailbox = hub.subscribe(USER)
    await hub.subscribed(USER)
    print("ready", flush=True)
    latencies: list[float] = []
    await drain(mailbox, latencies)
    await hub.close()
    print(json.dumps(latencies), flush=True)


class OwnRedis:
    """A redis-server on a free loopback port for the length of the measure."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process: subprocess.Popen[bytes] | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="tubei-bench-redis-"))

    def __enter__(self) -> str:
        if not Path(self.binary).is_file():
            return "redis://127.0.0.1:6379/0"  # the machine's own, if it runs one
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return f"redis://127.0.0.1:{port}/0"
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def case_redis(bench: Bench) -> list[Row]:
    """Delivery latency, local hub against Redis fan-out to another process, p50/p99."""

    rounds, count = (3, 500) if bench.scale.reps < 3 else (5, 1000)
    samples: dict[str, list[float]] = {"local": [], "redis": []}
    with OwnRedis() as url:
        prefix = f"tubei-bench-{uuid.uuid4().hex[:8]}:"
        for n in range(rounds):
            for mode in ("local", "redis") if n % 2 == 0 else ("redis", "local"):
                if mode == "local":
                    got = asyncio.run(local_run(count))
                else:
                    got = asyncio.run(redis_run(url, prefix, count))
                samples[mode] += got
            bench.say(
                f"events round {n}: p99 local {percentile(samples['local'], 99):.2f} ms, "
                f"redis {percentile(samples['redis'], 99):.2f} ms"
            )
    local, redis = samples["local"], samples["redis"]
    p50 = (percentile(local, 50), percentile(redis, 50))
    p99 = (percentile(local, 99), percentile(redis, 99))
    return [
        Row(
            "event delivery, added by Redis fan-out to another process (p99)",
            p99[1] - p99[0],
            "ms",
            target=Target("value", "<=", TARGET_MS, f"≤ {TARGET_MS:.1f} ms"),
            detail=(
                f"p99 {p99[1]:.2f} ms through Redis vs {p99[0]:.2f} ms local hub; "
                f"p50 {p50[1]:.2f} vs {p50[0]:.2f} ms; {len(redis)} events each, "
                f"one every {PACE * 1000:.0f} ms, {rounds} alternated runs"
            ),
        )
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "listen":
        asyncio.run(listen(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
