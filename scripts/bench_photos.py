"""Photo measures: a first backup's memory, thumbnails keeping up, their CPU, first views,
and ingest against the first Tubei (a Django view, `scripts/bench_seed.py`).

Registered in bench.py's CASES as `backup`, `ingest`, `derive` and `firstview`. Memory is
the server's resident set plus its decoding workers' (children in /proc), sampled every
few milliseconds. The 12-MP photo is generated once and cached in ~/.cache/tubei-bench.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench_http import API, ROOT, Connection, query
from bench_photo_rate import photo_bodies, send_photos
from bench_run import Bench, save_photo
from bench_servers import ServerProcess, TubeiServer
from bench_table import Row, Target, at_least, at_most, expect
from PIL import Image, ImageOps
from PIL.JpegImagePlugin import JpegImageFile

from server import imaging

MiB = 1024 * 1024
CACHE = Path.home() / ".cache" / "tubei-bench"
GRID = imaging.THUMBNAIL_SIZES["grid"]
PREVIEW = imaging.THUMBNAIL_SIZES["preview"]
MAX_PIXELS = 250_000_000


def camera_photo() -> Path:
    """The 12-MP phone photo (4032 x 3024, EXIF orientation 6), cached between runs."""
    path = CACHE / "camera-12mp-v1.jpg"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        save_photo(partial, (4032, 3024), 6)
        partial.replace(path)
    return path


# servers and memory ----------------------------------------------------------------------


class PhotoServer(TubeiServer):
    """`python -m server serve` with extra settings."""

    def __init__(self, workdir: Path, label: str, *extra: str) -> None:
        super().__init__(workdir, label, extra=extra)

    def pending_grids(self) -> int:
        """Blobs whose grid thumbnail is not settled yet, read from the catalog itself."""
        with sqlite3.connect(f"file:{self.data / 'catalog.sqlite3'}?mode=ro", uri=True) as db:
            count: int = db.execute(
                "SELECT count(*) FROM blobs WHERE thumbnail IS NULL"
            ).fetchone()[0]
        return count


class SeedServer(ServerProcess):
    """The first Tubei: Django's runserver and one view that writes `<md5>.jpg`."""

    def __init__(self, workdir: Path, label: str = "seed") -> None:
        super().__init__(workdir, label)
        self.folder = workdir / label

    def command(self) -> list[str]:
        script = str(ROOT / "scripts" / "bench_seed.py")
        return [sys.executable, script, "--port", str(self.port), "--dir", str(self.folder)]


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process itself has used (its workers not included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_rss(pid: int) -> int:
    """The process's RSS and its children's (the decoding workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(child) for child in f.read().split()]
    except OSError:
        children = []
    return rss(pid) + sum(rss(child) for child in children)


class TreeSampler:
    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid = pid
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, tree_rss(self.pid))

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def grids_settled(server: PhotoServer, timeout: float = 600) -> float:
    """perf_counter() when no grid thumbnail is pending (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while server.pending_grids():
        expect(time.monotonic() < deadline, "grid thumbnails did not finish")
        time.sleep(0.02)
    return time.perf_counter()


# a first backup ----------------------------------------------------------------------------


def one_backup(bench: Bench, count: int, settle: float, trim: bool) -> dict[str, float]:
    label = "backup-trim" if trim else "backup-notrim"
    flags = [] if trim else ["--memory-trim", "false"]
    with PhotoServer(bench.workdir, label, *flags) as tubei:
        idle = tree_rss(tubei.pid)
        bodies = photo_bodies(bench, count, label, camera_photo())
        with TreeSampler(tubei.pid) as sampler:
            run = send_photos(tubei, bodies)
            done = grids_settled(tubei)
        at_done = tree_rss(tubei.pid)
        time.sleep(settle)
        after = tree_rss(tubei.pid)
        figures = {
            "idle": idle / MiB,
            "peak": max(sampler.peak, at_done) / MiB,
            "at_done": at_done / MiB,
            "after": after / MiB,
            "rate": count / run.seconds,
            "lag": done - run.last_ack,
        }
    bench.say(
        f"{label}: {count} photos at {figures['rate']:.1f}/s, peak {figures['peak']:.0f} MiB, "
        f"{figures['at_done']:.0f} MiB at the last thumbnail, {figures['after']:.0f} MiB "
        f"{settle:.0f} s later (idle {figures['idle']:.0f} MiB)"
    )
    return figures


def case_backup(bench: Bench) -> list[Row]:
    """A first backup: 12-MP photos, 8 uploads at a time, thumbnails on; memory of it all."""
    quick = bench.scale.reps < 3
    count, settle = (200, 15.0) if quick else (1000, 60.0)
    with_trim = one_backup(bench, count, settle, trim=True)
    rows = [
        Row(
            "first backup: peak RSS, server and workers",
            with_trim["peak"],
            "MiB",
            target=Target("value", "<", 400, "< 400 MiB"),
            detail=f"{count} photos of 12 MP, 8 clients",
        ),
        Row(
            f"first backup: RSS {settle:.0f} s after the last thumbnail",
            with_trim["after"],
            "MiB",
            target=Target("value", "<", 200, "< 200 MiB"),
            detail=f"{with_trim['at_done']:.0f} MiB at the last thumbnail",
        ),
    ]
    if not quick:
        without = one_backup(bench, count, settle, trim=False)
        rows.append(
            Row(
                f"first backup: RSS {settle:.0f} s after, malloc_trim on vs off",
                with_trim["after"],
                "MiB",
                without["after"],
                "--memory-trim false",
                detail=f"peak {with_trim['peak']:.0f} vs {without['peak']:.0f} MiB",
            )
        )
    return rows


# ingest and thumbnails keeping up ------------------------------------------------------


def case_ingest(bench: Bench) -> list[Row]:
    """100 photos acknowledged, Tubei against the first Tubei's Django view; then the lag
    until every grid thumbnail of the batch is made."""
    count = 100
    reps = bench.scale.reps
    rates: dict[str, list[float]] = {"seed": [], "tubei": []}
    cpu: dict[str, list[float]] = {"seed": [], "tubei": []}
    lags: list[float] = []
    camera = camera_photo()
    with SeedServer(bench.workdir) as seed, PhotoServer(bench.workdir, "ingest") as tubei:
        servers: dict[str, ServerProcess] = {"seed": seed, "tubei": tubei}
        for rep in range(reps):
            for kind in ["seed", "tubei"] if rep % 2 == 0 else ["tubei", "seed"]:
                bodies = photo_bodies(bench, count, f"ingest-{kind}-{rep}", camera)
                used = cpu_seconds(servers[kind].pid)
                if kind == "seed":
                    run = send_photos(seed, bodies)
                else:
                    with bench.profiling(tubei, f"ingest-{rep}"):
                        run = send_photos(tubei, bodies)
                cpu[kind].append((cpu_seconds(servers[kind].pid) - used) / count * 1000)
                if kind == "tubei":
                    lags.append(grids_settled(tubei) - run.last_ack)
                rates[kind].append(count / run.seconds)
            bench.say(
                f"ingest rep {rep}: seed {rates['seed'][-1]:.1f}/s, tubei "
                f"{rates['tubei'][-1]:.1f}/s, grids {lags[-1]:.2f} s after the last answer"
            )
            for stored in seed.folder.glob("*.jpg"):
                stored.unlink()
        del servers
    return [
        Row(
            "100 photos acknowledged",
            statistics.median(rates["tubei"]),
            "photos/s",
            statistics.median(rates["seed"]),
            "first Tubei (Django)",
            at_least(1.3),
            f"12 MP, 8 clients, median of {reps}",
        ),
        Row(
            "server CPU per photo acknowledged",
            statistics.median(cpu["tubei"]),
            "ms",
            statistics.median(cpu["seed"]),
            "first Tubei (Django)",
            detail="the server process alone (decoding workers apart); steadier than rates",
        ),
        Row(
            "grid thumbnails of 100 photos ready, after the last acknowledgement",
            max(lags),
            "s",
            target=Target("value", "<=", 3.0, "≤ 3.00 s"),
            detail="worst run; previews are made on first view",
        ),
    ]


# CPU per photo for the derived sizes -----------------------------------------------------


def before(source: Path, dest: Path, size: int) -> None:
    """Thumbnails as they were made before decoding workers: one full decode per size."""
    with Image.open(source) as img:
        if isinstance(img, JpegImageFile):
            img.draft("RGB", (size, size))
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        thumb = img.convert("RGB") if img.mode != "RGB" else img
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
        thumb.info = {}
        thumb.save(dest, "JPEG", quality=82, progressive=True)


def cpu_ms(fn: Callable[[], None], reps: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(reps):
        started = time.process_time()
        fn()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def case_derive(bench: Bench) -> list[Row]:
    """CPU per 12-MP photo for its derived images: today's way against the old, same run."""
    source = camera_photo()
    out = bench.workdir / "derived"
    out.mkdir(exist_ok=True)
    limits = imaging.Limits(MAX_PIXELS)
    reps = 3 + 2 * bench.scale.reps

    def old_way() -> None:
        for size in (GRID, PREVIEW):
            before(source, out / f"old-{size}.jpg", size)

    def eager() -> None:
        expect(imaging.render(source, {GRID: out / "grid.jpg"}, limits) is None, "no grid")

    def opened() -> None:
        expect(imaging.render(source, {PREVIEW: out / "preview.jpg"}, limits) is None, "no preview")

    def both_at_once() -> None:
        outputs = {GRID: out / "g.jpg", PREVIEW: out / "p.jpg"}
        expect(imaging.render(source, outputs, limits) is None, "no thumbnails")

    old = statistics.median([cpu_ms(old_way, reps) for _ in range(1)])
    figures = {
        name: cpu_ms(fn, reps)
        for name, fn in (("eager", eager), ("opened", opened), ("both", both_at_once))
    }
    bench.say(
        f"derive: old {old:.0f} ms, grid {figures['eager']:.0f} ms, preview on view "
        f"{figures['opened']:.0f} ms, both in one decode {figures['both']:.0f} ms"
    )
    return [
        Row(
            "CPU per photo, derived images made as it arrives",
            figures["eager"],
            "ms",
            old,
            "both sizes, a decode each",
            at_most(0.5),
            "12 MP JPEG: the grid; the preview waits for its first view",
        ),
        Row(
            "CPU per photo, grid + preview when opened",
            figures["eager"] + figures["opened"],
            "ms",
            old,
            "both sizes, a decode each",
            detail=f"both in one decode: {figures['both']:.0f} ms",
        ),
    ]


# first view of a preview -----------------------------------------------------------------


def case_firstview(bench: Bench) -> list[Row]:
    """A preview opened for the first time: made while its request waits."""
    count = 10 if bench.scale.reps < 3 else 30
    latencies: list[float] = []
    with PhotoServer(bench.workdir, "firstview") as tubei:
        run = send_photos(tubei, photo_bodies(bench, count, "firstview", camera_photo()))
        grids_settled(tubei)
        connection = Connection(tubei.port)
        for sha in run.shas:
            started = time.perf_counter()
            answer = connection.request(
                "GET", query(f"{API}/images/{sha}/thumbnail", size="preview"), tubei.auth()
            )
            latencies.append((time.perf_counter() - started) * 1000)
            expect(answer.status == 200, f"preview of {sha}: {answer.status}")
        connection.close()
    ordered = sorted(latencies)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return [
        Row(
            "first view of a preview",
            statistics.median(latencies),
            "ms",
            target=Target("value", "<=", 300, "≤ 300 ms"),
            detail=f"12 MP, {count} photos; p90 {p90:.0f} ms, max {max(latencies):.0f} ms",
        )
    ]


CASES: dict[str, Callable[[Bench], list[Row]]] = {
    "backup": case_backup,
    "ingest": case_ingest,
    "derive": case_derive,
    "firstview": case_firstview,
}

__all__: Sequence[str] = ["CASES"]
