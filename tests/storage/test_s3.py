"""S3BlobHome on a real Ceph gateway: what only object storage has to prove."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.ioloop

from server.storage.home import StorageUnavailable
from server.storage.s3 import MIB, S3BlobHome
from server.storage.s3_config import S3Location
from tests.conftest import CORPUS, needs_corpus

TIMEOUT = 120


@pytest.fixture
def s3(s3_location: S3Location, io_loop: tornado.ioloop.IOLoop) -> Iterator[S3BlobHome]:
    async def open_home() -> S3BlobHome:
        return await S3BlobHome.open(
            s3_location, attempts=2, copy_limit=12 * MIB, copy_part=8 * MIB
        )

    home = io_loop.run_sync(open_home)
    yield home
    io_loop.run_sync(home.close)


def stage(folder: Path, data: bytes) -> tuple[Path, str]:
    sha256 = hashlib.sha256(data).hexdigest()
    path = folder / f"{sha256[:12]}.part"
    path.write_bytes(data)
    return path, sha256


async def read_all(home: S3BlobHome, sha256: str) -> bytes:
    return b"".join([chunk async for chunk in home.read(sha256)])


async def keys(home: S3BlobHome) -> list[str]:
    answer = await home._client.list_objects_v2(Bucket=home.bucket, Prefix=home.location.prefix)
    return [item["Key"] for item in answer.get("Contents", [])]


async def uploads_in_progress(home: S3BlobHome) -> list[str]:
    answer = await home._client.list_multipart_uploads(
        Bucket=home.bucket, Prefix=home.location.prefix
    )
    return [upload["Key"] for upload in answer.get("Uploads", [])]


def body_of(request: Any) -> bytes:
    body = request.body
    return body.getvalue() if isinstance(body, io.BytesIO) else bytes(body or b"")


def corrupt_in_transit(home: S3BlobHome, operation: str, times: int = 1) -> list[int]:
    """Flip a byte of the body after Content-MD5 was set: what a bad link would do."""
    hits: list[int] = []

    def flip(request: Any, **_: Any) -> None:
        body = body_of(request)
        if len(hits) < times and body:
            request.body = io.BytesIO(bytes([body[0] ^ 0xFF]) + body[1:])
            hits.append(len(body))

    home._client.meta.events.register(f"before-send.s3.{operation}", flip)
    return hits


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize(
    ("sign_payload", "refusal"), [(None, "XAmzContentSHA256Mismatch"), (False, "BadDigest")]
)
async def test_a_wrong_checksum_is_refused(
    s3_location: S3Location, tmp_path: Path, sign_payload: bool | None, refusal: str
) -> None:
    # Over plain http the signature covers the body's SHA-256; without it (https),
    # Content-MD5 is what the gateway checks. Either refuses bytes changed on the way.
    s3 = await S3BlobHome.open(s3_location, attempts=2, sign_payload=sign_payload)
    try:
        await refused_then_accepted(s3, tmp_path, refusal)
    finally:
        await s3.close()


async def refused_then_accepted(s3: S3BlobHome, tmp_path: Path, refusal: str) -> None:
    staged, sha256 = stage(tmp_path, os.urandom(100_000))
    hits = corrupt_in_transit(s3, "PutObject")
    with pytest.raises(StorageUnavailable, match="checksum") as caught:
        await s3.put(staged, sha256)
    assert refusal in str(caught.value.__cause__)
    assert hits == [100_000]
    assert not await s3.exists(sha256)
    assert await keys(s3) == []
    assert await s3.put(staged, sha256) is True  # the next try goes through whole
    assert await s3.rehash(sha256) == sha256


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_wrong_part_checksum_aborts_the_upload(s3: S3BlobHome, tmp_path: Path) -> None:
    staged, sha256 = stage(tmp_path, os.urandom(17 * MIB))
    hits = corrupt_in_transit(s3, "UploadPart")
    with pytest.raises(StorageUnavailable, match="checksum"):
        await s3.put(staged, sha256)
    assert hits
    assert not await s3.exists(sha256)
    assert await uploads_in_progress(s3) == []  # its parts were dropped


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("size", [1000, 17 * MIB])
async def test_a_file_that_does_not_match_its_name_is_refused(
    s3: S3BlobHome, tmp_path: Path, size: int
) -> None:
    staged, _ = stage(tmp_path, os.urandom(size))
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ValueError, match="does not hash"):
        await s3.put(staged, wrong)
    assert not await s3.exists(wrong)
    assert await uploads_in_progress(s3) == []


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_what_is_there_is_not_sent_again(s3: S3BlobHome, tmp_path: Path) -> None:
    staged, sha256 = stage(tmp_path, os.urandom(50_000))
    assert await s3.put(staged, sha256) is True
    sent = corrupt_in_transit(s3, "PutObject")  # would fail any PUT
    assert await s3.put(staged, sha256) is False
    assert sent == []


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_parts_are_at_least_8_mib(s3: S3BlobHome, tmp_path: Path) -> None:
    sizes: list[int] = []

    def record(request: Any, **_: Any) -> None:
        sizes.append(len(body_of(request)))

    s3._client.meta.events.register("before-send.s3.UploadPart", record)
    data = os.urandom(8 * MIB + 1)
    staged, sha256 = stage(tmp_path, data)
    assert await s3.put(staged, sha256) is True
    assert sorted(sizes) == [1, 8 * MIB]
    assert await read_all(s3, sha256) == data


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_quarantine_of_a_large_object_copies_in_parts(s3: S3BlobHome, tmp_path: Path) -> None:
    data = os.urandom(13 * MIB)  # over this fixture's copy limit (12 MiB)
    staged, sha256 = stage(tmp_path, data)
    await s3.put(staged, sha256)
    copied: list[str] = []
    s3._client.meta.events.register(
        "before-send.s3.UploadPartCopy", lambda request, **_: copied.append(request.url)
    )
    where = await s3.quarantine(sha256, "damaged")
    assert len(copied) == 2  # two parts of at most 8 MiB
    key = where.removeprefix(f"s3://{s3.bucket}/")
    assert key.startswith(f"{s3.location.prefix}quarantine/damaged/{sha256}.")
    answer = await s3._client.get_object(Bucket=s3.bucket, Key=key)
    assert hashlib.sha256(await answer["Body"].read()).hexdigest() == sha256
    assert not await s3.exists(sha256)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_keys_stay_under_the_prefix(s3: S3BlobHome, tmp_path: Path) -> None:
    staged, sha256 = stage(tmp_path, b"photo")
    await s3.put(staged, sha256)
    await s3.derived.put(f"{sha256}/360.jpg", b"thumb")
    prefix = s3.location.prefix
    assert sorted(await keys(s3)) == [
        f"{prefix}blobs/{sha256}",
        f"{prefix}derived/{sha256}/360.jpg",
    ]


@needs_corpus
@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_the_corpus_goes_up_and_comes_back_byte_exact(s3: S3BlobHome, tmp_path: Path) -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    assert files
    names: dict[str, Path] = {}
    for path in files:
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        await s3.put(path, sha256)  # straight from the file, as from staging
        names[sha256] = path
    listed = [name async for page in s3.pages(page_size=50) for name in page]
    assert listed == sorted(names)
    for sha256, path in names.items():
        assert await read_all(s3, sha256) == path.read_bytes(), path.name
