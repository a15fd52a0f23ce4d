"""`scripts/bench --only s3`: the S3 blob home, and Tubei on it, against aiobotocore used plainly.

A single-node Ceph RADOS Gateway (`scripts/s3-gateway`, its OSD on memstore) runs for
the measure. The same 200 MiB file goes up through `S3BlobHome.put` (HEAD, a multipart
upload of 8 MiB parts with Content-MD5, SHA-256 over the file, HEAD again) and as one
plain `put_object` of the open file on the same client; it comes back through
`S3BlobHome.read` (HEAD, one ranged GET streamed in 256 KiB chunks) and as one plain
`get_object` streamed the same way. Runs alternate; a figure is the median of the
pairs' ratios. Then the same gateway serves a `serve --blobs s3://...`
(bench_s3_serve.py): uploads, downloads and memory through Tubei itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import bench_s3_serve
from bench_table import Row, Run, at_least, expect, median, rotated
from s3_gateway import Gateway, GatewayUnavailable

from server.storage.s3 import READ_CHUNK, S3BlobHome
from server.storage.s3_config import S3Location

MiB = 1024 * 1024
MB = 1_000_000
SIZE_MIB = 200
BUCKET = "tubei-bench"


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(MiB):
            hasher.update(block)
    return hasher.hexdigest()


async def _measure(
    run: Run, gateway: Gateway, path: Path, size: int, sha256: str, rounds: int
) -> tuple[dict[str, list[float]], list[Row]]:
    location = S3Location(
        bucket=BUCKET,
        prefix="bench/",
        endpoint=gateway.endpoint,
        region="us-east-1",
        addressing="path",
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
    )
    home = await S3BlobHome.open(location)
    client = home._client  # the very client (pool, config, signing) the home uses
    plain_key = "plain/object"
    try:
        await client.create_bucket(Bucket=BUCKET)

        async def put_tubei() -> None:
            expect(await home.put(path, sha256), "put skipped a blob that was not there")

        async def put_plain() -> None:
            with open(path, "rb") as body:  # noqa: ASYNC230 - the plain way, on purpose
                await client.put_object(Bucket=BUCKET, Key=plain_key, Body=body)

        async def get_tubei() -> int:
            return sum([len(chunk) async for chunk in home.read(sha256, 0, size)])

        async def get_plain() -> int:
            answer = await client.get_object(Bucket=BUCKET, Key=plain_key)
            return sum([len(chunk) async for chunk in answer["Body"].iter_chunks(READ_CHUNK)])

        speeds: dict[str, list[float]] = {
            "put tubei": [], "put plain": [], "get tubei": [], "get plain": []
        }  # fmt: skip
        for n in range(rounds + 1):
            await home.delete(sha256)
            await client.delete_object(Bucket=BUCKET, Key=plain_key)
            for kind in rotated(["tubei", "plain"], n):
                started = time.perf_counter()
                await (put_tubei() if kind == "tubei" else put_plain())
                put_seconds = time.perf_counter() - started
                started = time.perf_counter()
                got = await (get_tubei() if kind == "tubei" else get_plain())
                get_seconds = time.perf_counter() - started
                expect(got == size, f"{kind}: read {got} of {size} bytes")
                if n:  # the first round only warms up the gateway and its pools
                    speeds[f"put {kind}"].append(size / put_seconds / MB)
                    speeds[f"get {kind}"].append(size / get_seconds / MB)
        expect(await home.rehash(sha256) == sha256, "the stored object does not hash to its name")
        await home.delete(sha256)
        await client.delete_object(Bucket=BUCKET, Key=plain_key)
        served = await bench_s3_serve.serve_rows(run, gateway, client, BUCKET, rounds)
    finally:
        await home.close()
    return speeds, served


def case_s3(run: Run) -> list[Row]:
    """MB/s of a 200 MiB blob into and out of the gateway: S3BlobHome against plain calls."""
    rounds = 3 * run.scale.reps
    path = run.random_file(SIZE_MIB)
    try:
        gateway = Gateway.start()
    except GatewayUnavailable as error:
        raise RuntimeError(f"the s3 measure needs a Ceph gateway: {error}") from None
    try:
        speeds, served = asyncio.run(
            _measure(run, gateway, path, path.stat().st_size, _sha256(path), rounds)
        )
    finally:
        gateway.stop()
    rows = []
    for verb, what, baseline in (
        ("put", "put a blob in S3", "plain put_object"),
        ("get", "read a blob from S3", "plain get_object"),
    ):
        ours, plain = speeds[f"{verb} tubei"], speeds[f"{verb} plain"]
        ratios = [a / b for a, b in zip(ours, plain, strict=True)]
        run.say(
            f"s3 {verb}: tubei {median(ours):.0f} MB/s, plain {median(plain):.0f} MB/s, "
            f"ratios {', '.join(f'{r:.2f}' for r in ratios)}"
        )
        rows.append(
            Row(
                what,
                median(ours),
                "MB/s",
                median(plain),
                baseline,
                at_least(0.8),
                f"{SIZE_MIB} MiB on a local Ceph gateway, the same client; median of "
                f"{rounds} pairs, which ranged {min(ratios):.2f}-{max(ratios):.2f}x",
                paired_ratio=median(ratios),
            )
        )
    return rows + served
