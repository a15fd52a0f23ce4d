"""`scripts/bench --only webupload`: an upload from the web app against tus-js-client.

The same server (`python -m server serve`, serving the built web app) takes a file from
tus-js-client under Node and one of the same size from the web app in headless
Chromium (Debian's, through playwright-core), alternately, with the same chunk size
(web/src/upload/settings.js). The browser's time runs from the start of its tus upload
to the file being stored (its `tubei.upload` performance measure); Node's from
`start()` to `onSuccess`. Each file is unique (a small JPEG, then random bytes), so
nothing is deduplicated. The time from the pick to stored (SHA-256 in a worker, the
check, then the upload) is given beside it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from bench_http import ROOT
from bench_servers import TubeiServer, environment
from bench_table import INFO, Row, at_least, expect, median
from PIL import Image

if TYPE_CHECKING:
    from bench_run import Bench

MiB = 1024 * 1024
MB = 1_000_000
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCRIPT = Path(__file__).with_name("bench_web_upload.mjs")


def unique_file(path: Path, mib: int, tag: str) -> Path:
    """A small real JPEG (unique by its comment), then `mib` MiB of random bytes."""
    head = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(head, "JPEG", comment=tag.encode())
    with path.open("wb") as out:
        out.write(head.getvalue())
        for _ in range(mib):
            out.write(os.urandom(MiB))
    return path


def case_web_upload(bench: Bench) -> list[Row]:
    """Browser upload MB/s against tus-js-client under Node, same server, same run."""
    expect(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium")
    expect(shutil.which("npm") is not None, "npm is missing")
    subprocess.run(
        ["npm", "run", "--silent", "build:web"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    mib = bench.scale.upload_mib // 2
    reps = bench.scale.reps + 1
    folder = bench.workdir / "webupload-files"
    folder.mkdir(exist_ok=True)
    order = []
    for rep in range(reps):
        kinds = ["node", "browser"] if rep % 2 == 0 else ["browser", "node"]
        for kind in kinds:
            path = unique_file(folder / f"{kind}-{rep}.jpg", mib, f"webupload-{kind}-{rep}")
            order.append({"kind": kind, "path": str(path)})
    with TubeiServer(bench.workdir, "webupload") as tubei:
        run = subprocess.run(
            ["node", str(SCRIPT), f"http://127.0.0.1:{tubei.port}", CHROMIUM, json.dumps(order)],
            cwd=ROOT,
            env={**environment(), "TUBEI_TOKEN": tubei.token()},
            capture_output=True,
            text=True,
            timeout=1800,
        )
    shutil.rmtree(folder, ignore_errors=True)
    expect(run.returncode == 0, f"bench_web_upload.mjs: {run.stderr[-2000:]}")
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    speeds: dict[str, list[float]] = {"node": [], "browser": [], "pick": []}
    for result in results:
        speeds[result["kind"]].append(result["size"] / result["seconds"] / MB)
        if result["kind"] == "browser":
            speeds["pick"].append(result["size"] / result["pickToStored"] / MB)
    bench.say(
        "webupload: node "
        + ", ".join(f"{v:.0f}" for v in speeds["node"])
        + " MB/s; browser "
        + ", ".join(f"{v:.0f}" for v in speeds["browser"])
        + " MB/s"
    )
    base = median(speeds["node"])
    detail = f"{mib} MiB, 8 MiB chunks, median of {reps}"
    return [
        Row(
            "web upload from Chromium, tus",
            median(speeds["browser"]),
            "MB/s",
            base,
            "tus-js-client under Node",
            at_least(0.7),
            detail,
        ),
        Row(
            "web upload, pick to stored (SHA-256 in a worker, /images/check, tus)",
            median(speeds["pick"]),
            "MB/s",
            base,
            "tus-js-client under Node",
            INFO,
            detail,
        ),
    ]
