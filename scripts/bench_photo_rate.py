"""`scripts/bench --only photos` and `--only events`: photos acknowledged a second.

`photos`: 12-MP JPEGs from 8 clients at a time, against the raw handler, and how long
after the last acknowledgement every thumbnail is ready. `events`: the same with 3-MP
photos and X-Upload-Id, with and without an events WebSocket listening. The senders
(`photo_bodies`, `send_photos`) serve `bench_photos`' measures too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench_http import API, Connection, Part, body_sha256, multipart_body, query, unique_jpeg
from bench_run import Bench
from bench_servers import RawServer, ServerProcess, TubeiServer
from bench_sockets import EventWatcher
from bench_table import Row, Target, at_least, expect, median, rotated

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
