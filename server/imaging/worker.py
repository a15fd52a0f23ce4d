"""`python -m server.imaging.worker BUDGET`: a decoding worker, one job at a time.

Jobs arrive as JSON lines on stdin and answers leave as JSON lines on stdout. The
process caps its own address space at what it holds once started plus the decode
budget and some slack, so a decoder that needs more than its header promised fails
here (MemoryError, or death) and the server, which only hears of it, goes on serving.
It decodes only on CPU time nothing else wants (SCHED_IDLE: uploads first), dies with the server
(PR_SET_PDEATHSIG), and exits after a MemoryError rather than carry on in a state
nobody vouches for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from .. import memory
from .derived import Limits, render

# Imported before the address space is capped: FFmpeg's libraries map about 100 MiB,
# which counts as what the worker holds at start, not against a decode's budget.
from .poster import render_poster
from .transcode import make_preview
from .video import NotAVideo, read_video_metadata

# Python's own objects, the decoders' tables and buffers, and a JPEG encoder's state.
SLACK = 128 * 1024 * 1024
_PR_SET_PDEATHSIG = 1
NICENESS = 19

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def address_space_now() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def die_with_parent(parent: int) -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def idle_priority() -> None:
    """Originals first: decode only on CPU time nothing else in the machine wants.

    SCHED_IDLE where Linux has it (an upload's hashing and writing always go first);
    a high niceness elsewhere.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(NICENESS)


def limit_address_space(budget: int) -> int:
    limit = address_space_now() + budget + SLACK
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


def handle(job: dict[str, Any], budget: int) -> dict[str, Any]:
    """One job: `image` (thumbnails, the default), `poster` (a video's), `probe` (a
    video's metadata) or `preview` (a video's H.264 preview, telling its progress)."""
    kind = job.get("type", "image")
    try:
        if kind == "probe":
            return _probe(Path(job["source"]))
        if kind == "preview":
            return _preview(Path(job["source"]), Path(job["output"]), budget)
        outputs = {int(size): Path(path) for size, path in job["outputs"].items()}
        limits = Limits(job["max_pixels"], budget)
        if kind == "poster":
            reason = render_poster(Path(job["source"]), outputs, limits)
        else:
            reason = render(Path(job["source"]), outputs, limits)
    except FileNotFoundError:
        return {"missing": True}
    except OSError as error:
        return {"error": f"{type(error).__name__}: {error}", "errno": error.errno}
    return {"made": reason is None, "reason": reason}


def _probe(source: Path) -> dict[str, Any]:
    try:
        return {"metadata": dataclasses.asdict(read_video_metadata(source))}
    except NotAVideo as error:
        return {"not_a_video": str(error)}


def _preview(source: Path, output: Path, budget: int) -> dict[str, Any]:
    made = make_preview(source, output, budget, _tell_progress)
    if isinstance(made, str):
        return {"made": False, "reason": made}
    return {"made": True, "reason": None, "preview": dataclasses.asdict(made)}


def _tell_progress(done: float) -> None:
    """A line before the answer: the pool reads it as progress, and waits on."""
    print(json.dumps({"progress": round(done, 4)}), flush=True)


def main(argv: list[str]) -> int:
    budget = int(argv[1])
    parent = int(argv[2]) if len(argv) > 2 else os.getppid()
    die_with_parent(parent)
    idle_priority()
    limit = limit_address_space(budget)
    print(json.dumps({"ready": os.getpid(), "address_space": limit}), flush=True)
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line), budget)
        except MemoryError:
            print(json.dumps({"failed": "out of memory"}), flush=True)
            return 1
        print(json.dumps(answer), flush=True)
        memory.give_back()  # a decode's pages, back to the system before the next
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
