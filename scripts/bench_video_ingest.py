"""A large video acknowledged against a photo of the same bytes (`scripts/bench --only video`).

The same file goes to one `serve` twice over, in alternated runs: as itself (an MP4,
sniffed as a video and probed in a decoding worker), and as a photo of the same bytes
and size (a small JPEG first, the MP4's bytes after it: sniffed as a JPEG, its header
walked). Each upload is made unique by a tail the format ignores (an MP4 `free` box; for
the photo, its JPEG's comment), so every one is stored anew. What the video costs
beyond the photo is reading its metadata, which must not read the file again.
"""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

from bench_http import API, Connection, FileRange, Part, multipart_body
from bench_servers import TubeiServer
from bench_table import Row, Run, at_least, expect, median, rotated
from PIL import Image

REPS = 3


def free_box(tag: str) -> bytes:
    payload = tag.encode()
    return struct.pack(">I", 8 + len(payload)) + b"free" + payload


def jpeg_head(tag: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "JPEG", comment=tag.encode())
    return out.getvalue()


def post(
    connection: Connection, server: TubeiServer, name: str, parts: list[Part]
) -> dict[str, object]:
    body, content_type = multipart_body(name, parts)
    headers = {**server.auth(), "Content-Type": content_type}
    answer = connection.request("POST", f"{API}/images", headers, body)
    expect(answer.status == 200, f"upload of {name}: {answer.status} {answer.body[:300]!r}")
    item: dict[str, object] = answer.json()["items"][0]  # type: ignore[index]
    return item


def ingest_rows(run: Run, video: Path) -> list[Row]:
    size = video.stat().st_size
    whole = FileRange(video, 0, size)
    rates: dict[str, list[float]] = {"video": [], "photo": []}
    with TubeiServer(run.workdir, "video-ingest") as server:
        connection = Connection(server.port)
        for n in range(REPS + 1):
            for kind in rotated(["video", "photo"], n):
                tag = f"video-ingest-{kind}-{n}"
                if kind == "video":
                    parts: list[Part] = [whole, free_box(tag)]
                    name, want = "clip.mp4", "video"
                else:
                    parts, name, want = [jpeg_head(tag), whole], "big.jpg", "photo"
                started = time.perf_counter()
                item = post(connection, server, name, parts)
                seconds = time.perf_counter() - started
                expect(item["kind"] == want, f"{name} was kept as {item['kind']}, not {want}")
                if n:  # the first round warms the server and its workers
                    rates[kind].append(size / seconds / 1e6)
        connection.close()
    ratios = [v / p for v, p in zip(rates["video"], rates["photo"], strict=True)]
    run.say(f"video ingest: ratios {', '.join(f'{r:.2f}' for r in ratios)}")
    return [
        Row(
            f"video: a {size / 2**20:.0f} MiB MP4 acknowledged",
            median(rates["video"]),
            "MB/s",
            median(rates["photo"]),
            "a photo of the same bytes",
            at_least(0.9),
            f"multipart, median of {REPS} pairs, which ranged {min(ratios):.2f}-{max(ratios):.2f}x",
            paired_ratio=median(ratios),
        )
    ]
