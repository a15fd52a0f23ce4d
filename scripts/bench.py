"""`scripts/bench`: Tubei's figures, each beside a baseline measured in the same run.

Every server runs as a process of its own: Tubei as `python -m server serve`, the
baseline as `scripts/bench_raw.py` (a bare `@stream_request_body` handler that writes
and fsyncs, and a plain `StaticFileHandler`, on the same HTTPServer settings), or as
the measure's module says (`bench_download`: nginx; `bench_timeline`: Tubei over a
small library). All are driven by the same client (`bench_http.Connection`: raw
sockets, `sendfile`), so a ratio compares servers, not clients. Baseline and Tubei runs
alternate, and a figure is the median of its runs.

    scripts/bench                  everything (about 5-10 minutes on 2 cores)
    scripts/bench --quick          everything, shorter (about 2-3 minutes)
    scripts/bench --only photos    one measurement (or several: --only upload,download)
    scripts/bench --profile        py-spy on the Tubei server during each measurement
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import io
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bench_catalog
import bench_cluster
import bench_download
import bench_hostile
import bench_s3
import bench_timeline
import bench_video
import bench_web
import bench_web_upload
from bench_events import case_redis
from bench_http import (
    API,
    Connection,
    FileRange,
    Part,
    body_length,
    body_sha256,
    multipart_body,
    query,
    unique_jpeg,
)
from bench_profile import Profile
from bench_servers import RawServer, ServerProcess, TubeiServer
from bench_sockets import EventWatcher
from bench_table import INFO, Row, Target, at_least, at_most, expect, median, rotated, table
from bench_uploaders import Job, uploaders
from PIL import Image, ImageChops, ImageOps

from server import imaging
from server.config import Settings

MiB = 1024 * 1024
MB = 1_000_000


# the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    reps: int
    upload_mib: int
    photos: int
    events_photos: int
    events_pairs: int
    thumbnail_reps: int
    list_sizes: tuple[int, int]
    list_requests: int
    memory_mib: int
    load_seconds: float
    load_raw_seconds: float


FULL = Scale(
    reps=3,
    upload_mib=512,
    photos=48,
    events_photos=60,
    events_pairs=5,
    thumbnail_reps=5,
    list_sizes=(1_000, 1_000_000),
    list_requests=60,
    memory_mib=1024,
    load_seconds=60,
    load_raw_seconds=15,
)
QUICK = Scale(
    reps=2,
    upload_mib=128,
    photos=24,
    events_photos=40,
    events_pairs=3,
    thumbnail_reps=3,
    list_sizes=(1_000, 1_000_000),
    list_requests=30,
    memory_mib=256,
    load_seconds=15,
    load_raw_seconds=5,
)


@dataclass
class Bench:
    workdir: Path
    scale: Scale
    profile: bool
    notes: list[str] = field(default_factory=list)
    _files: dict[str, Path] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def profiling(self, server: ServerProcess, name: str) -> Iterator[None]:
        if not self.profile:
            yield
            return
        profiles = self.workdir / "profiles"
        profiles.mkdir(exist_ok=True)
        spy = Profile(server.pid, profiles / f"{name}.txt")
        spy.start()
        try:
            yield
        finally:
            self.notes += spy.stop()

    # inputs, made once a run

    def camera_jpeg(self) -> Path:
        """A 12-MP phone photo: 4032 x 3024, EXIF orientation 6, about 4 MB at quality 90."""
        return self._made("camera-12mp.jpg", lambda path: save_photo(path, (4032, 3024), 6))

    def load_jpeg(self) -> Path:
        """A 3-MP photo (2048 x 1536, about 1 MB), as phones share them."""
        return self._made("load-3mp.jpg", lambda path: save_photo(path, (2048, 1536), 1))

    def random_file(self, mib: int) -> Path:
        def write(path: Path) -> None:
            with path.open("wb") as out:
                for _ in range(mib):
                    out.write(os.urandom(MiB))

        return self._made(f"random-{mib}MiB.bin", write)

    def _made(self, name: str, make: Callable[[Path], None]) -> Path:
        if name not in self._files:
            path = self.workdir / "inputs" / name
            path.parent.mkdir(exist_ok=True)
            make(path)
            self._files[name] = path
        return self._files[name]


def save_photo(path: Path, size: tuple[int, int], orientation: int) -> None:
    """A photo-like JPEG: smooth colour fields, some texture, sensor grain, camera EXIF."""
    rng = random.Random(size[0])
    w, h = size
    scene = Image.frombytes("RGB", (16, 12), rng.randbytes(16 * 12 * 3))
    scene = scene.resize(size, Image.Resampling.BICUBIC)
    texture = Image.frombytes("RGB", (w // 8, h // 8), rng.randbytes((w // 8) * (h // 8) * 3))
    image = Image.blend(scene, texture.resize(size, Image.Resampling.BICUBIC), 0.25)
    grain = Image.effect_noise(size, 6).convert("RGB")
    image = ImageChops.add(image, grain, scale=1.0, offset=-128)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Bench"
    exif[0x0110] = "Camera 12"
    exif.get_ifd(0x8769)[0x9003] = "2026:10:01 09:30:12"
    image.save(path, "JPEG", quality=90, exif=exif)


def tiny_jpeg(tag: str) -> bytes:
    """A small real JPEG, unique by its comment, to head a large upload."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "JPEG", comment=tag.encode())
    return out.getvalue()


def big_photo(bench: Bench, mib: int, tag: str) -> list[Part]:
    """A large upload: a real JPEG, then `mib` MiB of random bytes after its end."""
    return [tiny_jpeg(tag), FileRange(bench.random_file(mib), 0, mib * MiB)]


# uploads -------------------------------------------------------------------------------


def post_multipart(connection: Connection, server: ServerProcess, parts: list[Part]) -> str:
    """POST one file as multipart, to Tubei or to the baseline; seconds are timed outside."""
    body, content_type = multipart_body("photo.jpg", parts)
    if isinstance(server, TubeiServer):
        answer = connection.request(
            "POST", f"{API}/images", {**server.auth(), "Content-Type": content_type}, body
        )
        expect(answer.status == 200, f"upload: {answer.status} {answer.body[:300]!r}")
        sha: str = answer.json()["items"][0]["sha256"]  # type: ignore[index]
        return sha
    answer = connection.request("POST", "/upload", {"Content-Type": content_type}, body)
    expect(answer.status == 200, f"raw upload: {answer.status}")
    return ""


def post_tus(connection: Connection, server: TubeiServer, parts: list[Part]) -> str:
    """Create a tus upload and send it whole in one PATCH."""
    tus = {**server.auth(), "Tus-Resumable": "1.0.0"}
    created = connection.request(
        "POST", f"{API}/uploads/", {**tus, "Upload-Length": str(body_length(parts))}
    )
    expect(created.status == 201, f"tus creation: {created.status}")
    patched = connection.request(
        "PATCH",
        created.headers["location"],
        {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        parts,
    )
    expect(patched.status == 204, f"tus PATCH: {patched.status} {patched.body[:300]!r}")
    return patched.headers["tubei-image-id"]


def case_upload(bench: Bench) -> list[Row]:
    """Large upload MB/s: multipart and tus against the raw streaming handler."""
    mib = bench.scale.upload_mib
    speeds: dict[str, list[float]] = {"raw": [], "multipart": [], "tus": []}
    with RawServer(bench.workdir) as raw, TubeiServer(bench.workdir) as tubei:
        connection = {"raw": Connection(raw.port), "tubei": Connection(tubei.port)}
        with bench.profiling(tubei, "upload"):
            for rep in range(bench.scale.reps):
                for kind in rotated(list(speeds), rep):
                    parts = big_photo(bench, mib, f"upload-{kind}-{rep}")
                    started = time.perf_counter()
                    if kind == "tus":
                        post_tus(connection["tubei"], tubei, parts)
                    else:
                        server = raw if kind == "raw" else tubei
                        post_multipart(
                            connection["raw" if kind == "raw" else "tubei"], server, parts
                        )
                    speeds[kind].append(body_length(parts) / (time.perf_counter() - started) / MB)
                bench.say(
                    f"upload rep {rep}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in speeds.items())
                )
                for leftover in raw.folder.glob("*.upload"):
                    leftover.unlink()
    base = median(speeds["raw"])
    detail = f"{mib} MiB"
    return [
        Row(
            "upload, multipart",
            median(speeds["multipart"]),
            "MB/s",
            base,
            "raw",
            at_least(0.8),
            detail,
        ),
        Row(
            "upload, tus (one PATCH)",
            median(speeds["tus"]),
            "MB/s",
            base,
            "raw",
            at_least(0.8),
            detail,
        ),
    ]


# photos a second -----------------------------------------------------------------------


@dataclass
class PhotoRun:
    seconds: float  # first request sent to last answer received
    last_ack: float  # perf_counter() of the last answer
    shas: list[str]


def photo_bodies(
    bench: Bench, count: int, tag: str, source: Path | None = None
) -> list[tuple[list[Part], str, str]]:
    """(body, content type, sha256) for `count` unique copies of a photo (12 MP by default)."""
    camera = source or bench.camera_jpeg()
    bodies = []
    for n in range(count):
        photo = unique_jpeg(camera, f"{tag}-{n}")
        body, content_type = multipart_body(f"IMG_{n:04d}.jpg", photo)
        bodies.append((body, content_type, body_sha256(photo)))
    return bodies


def send_photos(
    server: ServerProcess,
    bodies: list[tuple[list[Part], str, str]],
    clients: int = 8,
    upload_ids: bool = False,
) -> PhotoRun:
    """`clients` connections upload the photos, each taking the next one as it is done."""
    tubei = isinstance(server, TubeiServer)
    path = f"{API}/images" if tubei else "/upload"
    auth = server.auth() if isinstance(server, TubeiServer) else {}
    work = iter(range(len(bodies)))
    lock = threading.Lock()
    errors: list[str] = []
    done: list[float] = []
    start = threading.Barrier(clients + 1)

    def client() -> None:
        connection = Connection(server.port)
        start.wait()
        while True:
            with lock:
                n = next(work, None)
            if n is None:
                break
            body, content_type, sha = bodies[n]
            headers = {**auth, "Content-Type": content_type}
            if upload_ids:
                headers["X-Upload-Id"] = sha[:32]
            try:
                answer = connection.request("POST", path, headers, body)
                ok = answer.status == 200
                if ok and tubei:
                    ok = answer.json()["items"][0]["sha256"] == sha  # type: ignore[index]
            except Exception as error:
                ok, answer = False, None
                errors.append(repr(error))
            if not ok:
                errors.append(f"photo {n}: {answer and answer.status}")
            with lock:
                done.append(time.perf_counter())
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    expect(not errors, f"photo uploads failed: {errors[:5]}")
    return PhotoRun(max(done) - began, max(done), [sha for _, _, sha in bodies])


def thumbnails_ready(tubei: TubeiServer, shas: list[str]) -> float:
    """Ask for every thumbnail of every photo, in upload order; perf_counter() when all are there.

    A thumbnail not made yet is made or waited for while its request waits, as for a
    gallery that asks: so the moment the last answer arrives, every thumbnail is ready.
    """
    connection = Connection(tubei.port)
    for sha in shas:
        for size in ("grid",):  # a preview is made on its first view (bench_photos: firstview)
            answer = connection.request(
                "HEAD", query(f"{API}/images/{sha}/thumbnail", size=size), tubei.auth()
            )
            expect(answer.status == 200, f"thumbnail {size} of {sha}: {answer.status}")
    connection.close()
    return time.perf_counter()


def case_photos(bench: Bench) -> list[Row]:
    """Photos acknowledged a second, 12-MP JPEGs, 8 clients at a time; thumbnails ready after."""
    count = bench.scale.photos
    rates: dict[str, list[float]] = {"raw": [], "tubei": []}
    lags: list[float] = []
    with RawServer(bench.workdir) as raw, TubeiServer(bench.workdir) as tubei:
        servers: dict[str, ServerProcess] = {"raw": raw, "tubei": tubei}
        with bench.profiling(tubei, "photos"):
            for rep in range(bench.scale.reps):
                for kind in rotated(list(rates), rep):
                    bodies = photo_bodies(bench, count, f"photos-{kind}-{rep}")
                    run = send_photos(servers[kind], bodies)
                    rates[kind].append(count / run.seconds)
                    if kind == "tubei":
                        lags.append(thumbnails_ready(tubei, run.shas) - run.last_ack)
                bench.say(
                    f"photos rep {rep}: raw {rates['raw'][-1]:.1f}/s, tubei "
                    f"{rates['tubei'][-1]:.1f}/s, thumbnails {lags[-1]:.2f} s after"
                )
                for leftover in raw.folder.glob("*.upload"):
                    leftover.unlink()
    detail = f"12 MP, {count} photos, 8 clients"
    return [
        Row(
            "photos acknowledged",
            median(rates["tubei"]),
            "photos/s",
            median(rates["raw"]),
            "raw",
            at_least(0.8),
            detail,
        ),
        Row(
            "every thumbnail ready, after the last acknowledgement",
            max(lags),
            "s",
            target=Target("value", "<=", 3.0, "≤ 3.00 s"),
            detail="worst run; the grid size",
        ),
    ]


SETTLE = 1.5


def case_events(bench: Bench) -> list[Row]:
    """Photos a second with X-Upload-Id, with and without an events WebSocket listening.

    What a listener costs is small beside the run-to-run noise of fsyncs and thumbnails,
    so runs go in pairs, one of each, back to back, and the figure is the median of the
    pairs' ratios. 3-MP photos keep the thumbnails to drain between runs short.
    """
    count = bench.scale.events_photos
    rates: dict[str, list[float]] = {"without": [], "with": []}
    ratios: list[float] = []
    with TubeiServer(bench.workdir, "events") as tubei, bench.profiling(tubei, "events"):
        for pair in range(bench.scale.events_pairs):
            for mode in rotated(list(rates), pair):
                bodies = photo_bodies(bench, count, f"events-{mode}-{pair}", bench.load_jpeg())
                watcher = None
                if mode == "with":
                    watcher = EventWatcher(tubei.port, [("bench", tubei.token())])
                    watcher.start()
                run = send_photos(tubei, bodies, upload_ids=True)
                rates[mode].append(count / run.seconds)
                thumbnails_ready(tubei, run.shas)
                # Past its thumbnails a photo is still recorded and announced: let that
                # finish, the same way after either kind of run, before the next one.
                time.sleep(SETTLE)
                if watcher is not None:
                    missing = watcher.wait_for({"bench": set(run.shas)}, timeout=30)
                    heard = watcher.sockets[0]
                    watcher.stop()
                    expect(not missing, f"image.added not heard: {missing}")
                    expect(
                        heard.done >= {sha[:32] for sha in run.shas},
                        "upload.done not heard for every upload",
                    )
            ratios.append(rates["with"][-1] / rates["without"][-1])
            bench.say(
                f"events pair {pair}: without {rates['without'][-1]:.1f}/s, "
                f"with {rates['with'][-1]:.1f}/s"
            )
    return [
        Row(
            "photos acknowledged, an events socket listening",
            median(rates["with"]),
            "photos/s",
            median(rates["without"]),
            "without",
            at_least(0.95),
            f"3 MP, {count} photos a run, X-Upload-Id; median of {len(ratios)} pairs, "
            f"which ranged {min(ratios):.2f}-{max(ratios):.2f}x",
            paired_ratio=median(ratios),
        )
    ]


# thumbnails ----------------------------------------------------------------------------


def naive_thumbnail(source: Path, dest: Path, size: int) -> None:
    """What Pillow does when asked plainly: decode it all, turn it upright, shrink, save."""
    with Image.open(source) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((size, size), Image.Resampling.LANCZOS)
        upright.convert("RGB").save(dest, "JPEG", quality=85)


def case_thumbnail(bench: Bench) -> list[Row]:
    """server.imaging.make_thumbnail against naive Pillow, in this process, on a 12-MP JPEG."""
    source = bench.camera_jpeg()
    out = bench.workdir / "thumbs"
    out.mkdir(exist_ok=True)
    max_pixels = Settings().max_pixels
    rows = []
    for name, size in sorted(imaging.THUMBNAIL_SIZES.items(), key=lambda item: item[1]):
        times: dict[str, list[float]] = {"naive": [], "tubei": []}
        for rep in range(bench.scale.thumbnail_reps + 1):
            for kind in rotated(list(times), rep):
                dest = out / f"{kind}-{size}.jpg"
                started = time.perf_counter()
                if kind == "tubei":
                    expect(imaging.make_thumbnail(source, dest, size, max_pixels), "no thumbnail")
                else:
                    naive_thumbnail(source, dest, size)
                if rep:  # the first round warms up
                    times[kind].append((time.perf_counter() - started) * 1000)
        rows.append(
            Row(
                f"thumbnail, {name} ({size} px)",
                median(times["tubei"]),
                "ms",
                median(times["naive"]),
                "naive Pillow",
                at_most(0.35),
                "12 MP JPEG, EXIF-rotated",
            )
        )
    return rows


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


# the command ---------------------------------------------------------------------------

CASES: dict[str, Callable[[Bench], list[Row]]] = {
    "upload": case_upload,
    "download": bench_download.case_download,
    "photos": case_photos,
    "events": case_events,
    "thumbnail": case_thumbnail,
    "timeline": bench_timeline.case_timeline,
    "memory": case_memory,
    "load": case_load,
    "redis": case_redis,
    "catalog": bench_catalog.case_catalog,
    "cluster": bench_cluster.case_cluster,
    "s3": bench_s3.case_s3,
    "video": bench_video.case_video,
    "hostile": bench_hostile.case_hostile,
    "webupload": bench_web_upload.case_web_upload,
    "web": bench_web.case_web,
}


def _photo_cases() -> dict[str, Callable[[Bench], list[Row]]]:
    """bench_photos.py's measures (backup, ingest, derive, firstview); it imports this module."""
    sys.modules.setdefault("bench", sys.modules[__name__])
    import bench_photos

    return bench_photos.CASES


CASES.update(_photo_cases())


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {platform.system()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs of everything")
    parser.add_argument(
        "--only", default="", metavar="NAMES", help=f"comma-separated: {', '.join(CASES)}"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on the Tubei server, summaries at the end"
    )
    parser.add_argument("--load-seconds", type=float, help="how long the load runs")
    parser.add_argument(
        "--workdir", type=Path, help="where servers keep their data (default: a temp folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown measurement {', '.join(unknown)}; there are {', '.join(CASES)}")
    scale = QUICK if args.quick else FULL
    if args.load_seconds:
        scale = dataclasses.replace(scale, load_seconds=args.load_seconds)
    workdir = Path(tempfile.mkdtemp(prefix="tubei-bench-", dir=args.workdir))
    bench = Bench(workdir, scale, args.profile)
    started = time.monotonic()
    rows: list[Row] = []
    failed: list[str] = []
    try:
        for name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            case_started = time.monotonic()
            try:
                rows += CASES[name](bench)
            except Exception as error:  # one broken measurement does not hide the others
                failed.append(f"{name}: {error!r}")
                print(f"  FAILED: {error!r}", file=sys.stderr)
            bench.say(f"{name}: {time.monotonic() - case_started:.0f} s")
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    mode = "quick" if args.quick else "full"
    took = time.monotonic() - started
    print(f"\nTubei bench, {datetime.date.today()}, {mode}, {machine()}, {took:.0f} s\n")
    print(table(rows))
    for line in bench.notes:
        print(line)
    for line in failed:
        print(f"FAILED {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
