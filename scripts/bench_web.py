"""`scripts/bench --only web`: the web app's timeline in Chromium, on loopback.

First paint: a server over a catalog of 10k photos (rows as `add_image` makes them,
bench_timeline.fill_catalog) plus a screen of real photos, uploaded through the API
sorting first (by their upload), so that the first screen's thumbnails are real files;
the baseline is the same screen of photos alone. Each run is a fresh page of a fresh
browser context, timed from its navigation to the app's `tubei:timeline-painted` mark
(the first screen's thumbnails loaded), after one warm-up visit that makes them.

Memory: the timeline of 100k photos scrolled from the top to a quarter, the middle and
the bottom in 80 steps, every step waiting until its rows are loaded; at each stop the
JS heap and the DOM node counter after two collections (the counter after a single
collection is kept beside it) (Chromium's DevTools protocol), and
the elements in the document; then back to the top and down to the bottom again (80
steps each way). Bounded: the bottom's figure against the quarter's (the heap: the
store of chunks is full by then) or the top's (elements, nodes), and, after the second
pass, the nodes Blink's counter holds outside the document against those in it (it
counts every node Blink still holds, so removed cells kept alive would make it grow
with the distance scrolled).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess

from bench_http import API, ROOT, Connection, multipart_body
from bench_servers import TubeiServer
from bench_table import Row, Run, Target, at_most, expect, median
from bench_timeline import fill_catalog
from PIL import Image

SCREEN = 60  # more than a 1280x800 first screen shows (about 9 columns by 6 rows)
PAINT_RUNS = 7


def screen_photo(n: int) -> bytes:
    image = Image.new("RGB", (800, 600), ((n * 37) % 256, (n * 91) % 256, 160))
    image.paste(Image.new("RGB", (200, 150), (250, (n * 13) % 256, 40)), (n * 7 % 600, 200))
    # No time taken: they sort by their upload, newer than every synthetic row (taken
    # 2010 to 2025, or uploaded before the catalog was filled): the first screen.
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def upload_screen(server: TubeiServer) -> None:
    connection = Connection(server.port)
    for n in range(SCREEN):
        body, content_type = multipart_body(f"screen-{n}.jpg", [screen_photo(n)])
        headers = {**server.auth(), "Content-Type": content_type}
        answer = connection.request("POST", f"{API}/images", headers, body)
        expect(answer.status == 200, f"upload: {answer.status} {answer.body[:200]!r}")


def chromium(*args: str) -> dict[str, object]:
    done = subprocess.run(
        ["node", str(ROOT / "scripts" / "bench_web.mjs"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    expect(done.returncode == 0, f"bench_web.mjs: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def paint_ms(run: Run, label: str, count: int) -> tuple[float, int]:
    folder = run.workdir / f"web-{label}"
    if count:
        fill_catalog(folder, count)
    server = TubeiServer(run.workdir, f"web-{label}", folder)
    server.start()
    try:
        upload_screen(server)
        found = chromium(
            "paint", f"http://127.0.0.1:{server.port}", server.token(), str(PAINT_RUNS)
        )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    times = [float(t) for t in found["paint_ms"]]  # type: ignore[attr-defined]
    real = min(int(r) for r in found["real"])  # type: ignore[attr-defined]
    return median(times), real


def case_web(run: Run) -> list[Row]:
    expect((ROOT / "web" / "dist" / "index.html").exists(), "build the web app: npm run build:web")
    alone, alone_real = paint_ms(run, "screen", 0)
    big, big_real = paint_ms(run, "10k", 10_000)
    run.say(f"web: first paint {big:.0f} ms at 10k, {alone:.0f} ms for a screen alone")
    expect(big_real >= 12 and alone_real >= 12, f"thumbnails on the first screen: {big_real}")

    folder = run.workdir / "web-100k"
    fill_catalog(folder, 100_000)
    server = TubeiServer(run.workdir, "web-100k", folder)
    server.start()
    try:
        upload_screen(server)
        found = chromium("memory", f"http://127.0.0.1:{server.port}", server.token())
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    names = ("top", "quarter", "middle", "bottom", "again")
    stops: dict[str, dict[str, float]] = {k: found[k] for k in names}  # type: ignore[misc]
    run.say(f"web: memory {json.dumps(stops)}")
    paint_row = Row(
        "web: first paint of the timeline, 10k photos",
        big,
        "ms",
        alone,
        f"{SCREEN} photos",
        Target("value", "<=", 1000.0, "≤ 1000 ms"),
        f"Chromium, loopback, median of {PAINT_RUNS}; {big_real} real thumbnails",
    )
    mib = {k: v["heap"] / 2**20 for k, v in stops.items()}
    heap = Row(
        "web: JS heap scrolled to the bottom of 100k photos",
        mib["bottom"],
        "MiB",
        mib["quarter"],
        "a quarter down",
        at_most(1.5),
        f"after GC; top {mib['top']:.1f}, middle {mib['middle']:.1f} MiB; "
        "the store fills to its cap in the first quarter",
    )

    def against_top(what: str, key: str, unit: str, detail: str) -> Row:
        bottom, top = stops["bottom"][key], stops["top"][key]
        return Row(what, bottom, unit, top, "at the top", at_most(1.5), detail)

    live = against_top(
        "web: DOM elements in the document, bottom of 100k photos",
        "live",
        "elements",
        f"middle {stops['middle']['live']:.0f}; {stops['bottom']['cells']:.0f} cells",
    )
    nodes = against_top(
        "web: DOM nodes by CDP Performance.getMetrics, bottom of 100k photos",
        "nodes",
        "nodes",
        f"after two collections; quarter "
        f"{stops['quarter']['nodes']:.0f}, middle {stops['middle']['nodes']:.0f}; "
        f"after one collection {stops['bottom']['nodes_one_gc']:.0f}",
    )
    # Bounded, whatever the screen at the stop: after a second pass, what Blink holds
    # outside the document is less than what is in it (removed cells kept alive would
    # add a screen's worth for every screen scrolled past: thousands by the bottom).
    last = stops["again"]
    again = Row(
        "web: DOM nodes held outside the document, bottom of 100k photos after a second pass",
        last["nodes"] - last["doc"],
        "nodes",
        last["doc"],
        "in the document",
        at_most(1.0),
        f"back to the top and down again; after the first pass "
        f"{stops['bottom']['nodes'] - stops['bottom']['doc']:.0f} outside; "
        f"JS event listeners {last['listeners']:.0f} against {stops['bottom']['listeners']:.0f}",
    )
    return [paint_row, heap, live, nodes, again]
