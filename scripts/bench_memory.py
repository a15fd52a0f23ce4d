"""`scripts/bench --only memory`: how much a server's memory grows during one large upload.

Memory is VmRSS sampled every few milliseconds from /proc, and VmHWM after.
"""

from __future__ import annotations

import threading
import time

from bench_http import Connection
from bench_run import Bench, MiB, big_photo, tiny_jpeg
from bench_servers import RawServer, ServerProcess, TubeiServer
from bench_table import Row, Target
from bench_upload import post_multipart

# memory --------------------------------------------------------------------------------


class RssSampler:
    """The largest VmRSS of a process, read every few milliseconds from /proc."""

    def __init__(self, server: ServerProcess, every: float = 0.01) -> None:
        self.server = server
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.server.status()["VmRSS"]))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max(rss for _, rss in self.samples)


def growth_during_upload(bench: Bench, server: ServerProcess, mib: int) -> float:
    """MiB the server's resident memory grew, at its peak, while it took one big upload."""
    connection = Connection(server.port)
    post_multipart(connection, server, [tiny_jpeg(f"warm-{server.label}")])  # warm up
    time.sleep(0.3)
    before = server.status()
    with RssSampler(server) as sampler:
        post_multipart(connection, server, big_photo(bench, mib, f"memory-{server.label}"))
    after = server.status()
    peak = sampler.peak
    if after["VmHWM"] > before["VmHWM"]:
        peak = max(peak, after["VmHWM"])
    return (peak - before["VmRSS"]) / MiB


def case_memory(bench: Bench) -> list[Row]:
    """Server memory growth (VmRSS/VmHWM from /proc) during one large multipart upload."""
    mib = bench.scale.memory_mib
    with RawServer(bench.workdir, "memory-raw") as raw:
        raw_growth = growth_during_upload(bench, raw, mib)
    with TubeiServer(bench.workdir, "memory-tubei") as tubei, bench.profiling(tubei, "memory"):
        tubei_growth = growth_during_upload(bench, tubei, mib)
    return [
        Row(
            "server memory growth during an upload",
            tubei_growth,
            "MiB",
            raw_growth,
            "raw",
            Target("value", "<", 32, "< 32 MiB"),
            f"{mib} MiB multipart",
        )
    ]
