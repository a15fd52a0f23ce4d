"""Tubei serving originals from object storage, against the same gateway used plainly.

Part of `scripts/bench --only s3`, on its gateway. A `serve` with `--blobs s3://...`
takes a 200 MiB upload (a small JPEG, then random bytes: one multipart POST, sent with
sendfile) and answers only once the object is in the bucket; the baseline is one plain
`put_object` of a file of the same size with the same client library the server uses
(aiobotocore), straight to the gateway. The original then comes back through Tubei
(`GET .../original`, streamed from the store) against a plain `get_object` streamed in
the server's chunk size. Runs alternate; a figure is the median of the pairs' ratios.
Last, a 1 GiB upload through Tubei, the server's RSS sampled all along: what it grows by.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from bench_http import API, Connection, FileRange, multipart_body
from bench_servers import TubeiServer, proc_status
from bench_table import Row, Run, Target, at_least, expect, median, rotated
from PIL import Image
from s3_gateway import Gateway

from server.storage.s3 import READ_CHUNK

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

MiB = 1024 * 1024
MB = 1_000_000
SIZE_MIB = 200
LARGE_MIB = 1024
RSS_LIMIT_MIB = 64


def head_jpeg(tag: str) -> bytes:
    """A small real JPEG, unique by its comment, that the random bytes follow."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "JPEG", comment=tag.encode())
    return out.getvalue()


class PeakRss:
    """The highest VmRSS of a process while the block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def upload(connection: Connection, server: TubeiServer, path: Path, mib: int, tag: str) -> str:
    body, content_type = multipart_body("big.jpg", [head_jpeg(tag), FileRange(path, 0, mib * MiB)])
    headers = {**server.auth(), "Content-Type": content_type}
    answer = connection.request("POST", f"{API}/images", headers, body)
    expect(answer.status == 200, f"upload to Tubei on S3: {answer.status} {answer.body[:300]!r}")
    return str(answer.json()["items"][0]["sha256"])  # type: ignore[index]


def download(connection: Connection, server: TubeiServer, sha256: str) -> int:
    answer = connection.request("GET", f"{API}/images/{sha256}/original", server.auth(), keep=False)
    expect(answer.status == 200, f"original from Tubei on S3: {answer.status}")
    return answer.length


async def empty(client: S3Client, bucket: str, prefix: str) -> None:
    """Delete every object under `prefix`: the gateway's memory holds what is kept."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    async for page in pages:
        for item in page.get("Contents", []):
            await client.delete_object(Bucket=bucket, Key=item["Key"])


async def plain_round(client: S3Client, bucket: str, path: Path, size: int) -> tuple[float, float]:
    """Seconds of one plain put_object of `path` and of its streamed get_object."""
    key = "plain/object"
    started = time.perf_counter()
    with open(path, "rb") as body:  # noqa: ASYNC230 - the plain way, on purpose
        await client.put_object(Bucket=bucket, Key=key, Body=body)
    put = time.perf_counter() - started
    started = time.perf_counter()
    answer = await client.get_object(Bucket=bucket, Key=key)
    got = sum([len(chunk) async for chunk in answer["Body"].iter_chunks(READ_CHUNK)])
    get = time.perf_counter() - started
    expect(got == size, f"plain get_object read {got} of {size} bytes")
    await client.delete_object(Bucket=bucket, Key=key)
    return put, get


async def serve_rows(
    run: Run, gateway: Gateway, client: S3Client, bucket: str, rounds: int
) -> list[Row]:
    """The through-Tubei figures; `client` is open on `gateway`, `bucket` exists. The
    HTTP client is blocking: it runs on a thread while the loop waits for it."""
    path = run.random_file(SIZE_MIB)
    query = f"endpoint={quote(gateway.endpoint, safe='')}&region=us-east-1&addressing=path"
    server = TubeiServer(run.workdir, "s3-serve", extra=["--blobs", f"s3://{bucket}/serve?{query}"])
    server.env = {
        "TUBEI_S3_ACCESS_KEY_ID": gateway.access_key,
        "TUBEI_S3_SECRET_ACCESS_KEY": gateway.secret_key,
    }
    speeds: dict[str, list[float]] = {
        k: [] for k in ("put tubei", "put plain", "get tubei", "get plain")
    }
    try:
        server.start()
        connection = Connection(server.port)
        size = SIZE_MIB * MiB
        for n in range(rounds + 1):
            for kind in rotated(["tubei", "plain"], n):
                if kind == "plain":
                    put, get = await plain_round(client, bucket, path, size)
                else:
                    started = time.perf_counter()
                    sha256 = await asyncio.to_thread(
                        upload, connection, server, path, SIZE_MIB, f"round-{n}"
                    )
                    put = time.perf_counter() - started
                    started = time.perf_counter()
                    got = await asyncio.to_thread(download, connection, server, sha256)
                    get = time.perf_counter() - started
                    expect(got >= size, f"Tubei sent {got} of {size}+ bytes")
                    await empty(client, bucket, "serve/")  # behind Tubei's back: a bench
                if n:  # the first round warms the gateway, the server and their pools
                    speeds[f"put {kind}"].append(size / put / MB)
                    speeds[f"get {kind}"].append(size / get / MB)
        large = run.random_file(LARGE_MIB)
        before = proc_status(server.pid)["VmRSS"]
        with PeakRss(server.pid) as sampled:
            await asyncio.to_thread(upload, connection, server, large, LARGE_MIB, "large")
        await empty(client, bucket, "serve/")
        growth = (sampled.peak - before) / MiB
        connection.close()
    finally:
        server.stop()
    rows = []
    for verb, what, baseline in (
        ("put", "upload an original to Tubei on S3", "plain put_object"),
        ("get", "download an original from Tubei on S3", "plain get_object"),
    ):
        ratios = [
            a / b for a, b in zip(speeds[f"{verb} tubei"], speeds[f"{verb} plain"], strict=True)
        ]
        run.say(f"s3 serve {verb}: ratios {', '.join(f'{r:.2f}' for r in ratios)}")
        rows.append(
            Row(
                what,
                median(speeds[f"{verb} tubei"]),
                "MB/s",
                median(speeds[f"{verb} plain"]),
                baseline,
                at_least(0.8),
                f"{SIZE_MIB} MiB, --blobs s3:// on a local Ceph gateway; median of {rounds} "
                f"pairs, which ranged {min(ratios):.2f}-{max(ratios):.2f}x",
                paired_ratio=median(ratios),
            )
        )
    rows.append(
        Row(
            "server memory growth, a 1 GiB upload to Tubei on S3",
            growth,
            "MiB",
            target=Target("value", "<", RSS_LIMIT_MIB, f"< {RSS_LIMIT_MIB} MiB"),
            detail=f"VmRSS {before / MiB:.0f} MiB before, peak {sampled.peak / MiB:.0f} MiB",
        )
    )
    return rows
