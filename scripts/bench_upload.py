"""`scripts/bench --only upload`: one large upload's MB/s, multipart and tus, against raw.

The baseline is `scripts/bench_raw.py`'s streaming handler, which writes and fsyncs.
"""

from __future__ import annotations

import time

from bench_http import API, Connection, Part, body_length, multipart_body
from bench_run import MB, Bench, big_photo
from bench_servers import RawServer, ServerProcess, TubeiServer
from bench_table import Row, at_least, expect, median, rotated

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
