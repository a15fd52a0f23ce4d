"""`scripts/bench`: Tubei's figures, each beside a baseline measured in the same run.

Every server runs as a process of its own: Tubei as `python -m server serve`, the
baseline as `scripts/bench_raw.py` (a bare `@stream_request_body` handler that writes
and fsyncs, and a plain `StaticFileHandler`, on the same HTTPServer settings), or as
the measure's module says (`bench_download`: nginx; `bench_timeline`: Tubei over a
small library). All are driven by the same client (`bench_http.Connection`: raw
sockets, `sendfile`), so a ratio compares servers, not clients. Baseline and Tubei runs
alternate, and a figure is the median of its runs.

This module is the command: it runs the measures named in `CASES` and prints their
table (`bench_table`). Each measure lives in a module of its own, `bench_<name>.py`
(`photos` and `events` in `bench_photo_rate`, `redis` in `bench_events`; `backup`,
`ingest`, `derive` and `firstview` in `bench_photos`), and is given a `bench_run.Bench`.

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
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import bench_catalog
import bench_cluster
import bench_download
import bench_hostile
import bench_load
import bench_memory
import bench_photo_rate
import bench_photos
import bench_s3
import bench_thumbnail
import bench_timeline
import bench_upload
import bench_video
import bench_web
import bench_web_upload
from bench_events import case_redis
from bench_run import FULL, QUICK, Bench
from bench_table import Row, table

# the command ---------------------------------------------------------------------------

CASES: dict[str, Callable[[Bench], list[Row]]] = {
    "upload": bench_upload.case_upload,
    "download": bench_download.case_download,
    "photos": bench_photo_rate.case_photos,
    "events": bench_photo_rate.case_events,
    "thumbnail": bench_thumbnail.case_thumbnail,
    "timeline": bench_timeline.case_timeline,
    "memory": bench_memory.case_memory,
    "load": bench_load.case_load,
    "redis": case_redis,
    "catalog": bench_catalog.case_catalog,
    "cluster": bench_cluster.case_cluster,
    "s3": bench_s3.case_s3,
    "video": bench_video.case_video,
    "hostile": bench_hostile.case_hostile,
    "webupload": bench_web_upload.case_web_upload,
    "web": bench_web.case_web,
    **bench_photos.CASES,  # backup, ingest, derive, firstview
}


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
