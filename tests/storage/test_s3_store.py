"""S3BlobStore on a real Ceph gateway: local staging, S3 as the blobs' final home, gc's
graveyard as a prefix, and the local copy a decoder reads."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tornado.ioloop

from server.storage import BlobMissing, s3_store
from server.storage.home import StorageUnavailable
from server.storage.local import LocalBlobWriter
from server.storage.s3_config import S3Location
from server.storage.s3_parts import MIB
from server.storage.s3_store import S3BlobStore

TIMEOUT = 120


@pytest.fixture
def store(
    s3_location: S3Location, tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> Iterator[S3BlobStore]:
    executor = ThreadPoolExecutor(4)
    made = S3BlobStore(s3_location, tmp_path / "tmp", executor, attempts=2)
    io_loop.run_sync(made.start)
    yield made
    io_loop.run_sync(made.close)
    executor.shutdown()


async def staged(store: S3BlobStore, data: bytes) -> tuple[LocalBlobWriter, str]:
    writer = store.open_writer()
    for at in range(0, len(data), 1 << 20):
        await writer.write(data[at : at + (1 << 20)])
    return writer, (await writer.finish()).sha256


async def read_all(
    store: S3BlobStore, sha256: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.read(sha256, start, end)])


async def object_keys(store: S3BlobStore) -> list[str]:
    home = await store.home()
    answer = await home._client.list_objects_v2(Bucket=home.bucket, Prefix=home.location.prefix)
    return sorted(item["Key"][len(home.location.prefix) :] for item in answer.get("Contents", []))


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_commit_puts_the_staged_file_under_its_hash(store: S3BlobStore) -> None:
    small, large = os.urandom(100_000), os.urandom(9 * MIB)  # one PUT; a multipart upload
    for data in (small, large):
        writer, sha256 = await staged(store, data)
        assert await store.commit(writer) is True
        assert await store.commit(writer) is False
        assert writer.staged_path.exists()
        await writer.abort()
        assert await store.exists(sha256) and await store.size(sha256) == len(data)
        assert await read_all(store, sha256) == data
        assert await read_all(store, sha256, 5, 105) == data[5:105]
        assert await store.rehash(sha256) == sha256
        assert store.local_path(sha256) is None
    names = [name async for name in store.all_blobs()]
    assert names == sorted(hashlib.sha256(d).hexdigest() for d in (small, large))
    await store.delete(names[0])
    await store.delete(names[0])
    assert not await store.exists(names[0])


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_uploading_again_repairs_an_object_gone_bad(store: S3BlobStore) -> None:
    data = os.urandom(50_000)
    writer, sha256 = await staged(store, data)
    await store.commit(writer)
    home = await store.home()
    flipped = bytes([data[0] ^ 1]) + data[1:]  # same size, other bytes
    await home._client.put_object(Bucket=home.bucket, Key=home.key(sha256), Body=flipped)
    assert await store.rehash(sha256) != sha256
    assert await store.commit(writer) is True
    assert await read_all(store, sha256) == data


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_decoder_reads_the_kept_file_or_a_fetched_copy(store: S3BlobStore) -> None:
    data = os.urandom(30_000)
    writer, sha256 = await staged(store, data)
    await store.commit(writer)
    await writer.abort()
    async with store.source(sha256) as path:
        assert path.parent == store.staging_dir and path.read_bytes() == data
    assert not path.exists()
    store._kept.clear()  # a later decode (a preview): fetched from the store
    async with store.source(sha256) as path:
        assert path.read_bytes() == data
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        async with store.source("0" * 64):
            pass
    leftovers = sorted(p.name for p in store.staging_dir.iterdir() if "fetch" in p.name)
    assert leftovers == []


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_gc_buries_puts_back_and_discards(store: S3BlobStore) -> None:
    data = os.urandom(20_000)
    writer, sha256 = await staged(store, data)
    await store.commit(writer)
    placed = await store.changed_at(sha256)
    assert placed is not None and abs(placed - time.time()) < 300
    grave = await store.bury(sha256)
    assert grave is not None and grave.startswith(sha256 + ".")
    assert not await store.exists(sha256) and await store.changed_at(sha256) is None
    assert await store.bury(sha256) is None
    assert await store.graves(3600) == [] and await store.graves(-60) == [grave]
    assert await store.unbury(grave) is True
    assert await read_all(store, sha256) == data
    assert await store.unbury(grave) is False  # settled already
    second = await store.bury(sha256)
    assert second is not None
    await store.commit(writer)  # an ingest placed it again meanwhile
    assert await store.unbury(second) is False and await read_all(store, sha256) == data
    third = await store.bury(sha256)
    assert third is not None
    await store.discard(third)
    assert await object_keys(store) == []
    with pytest.raises(BlobMissing):
        await store.size(sha256)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_missing_bucket_is_said_at_start(s3_location: S3Location, tmp_path: Path) -> None:
    executor = ThreadPoolExecutor(1)
    elsewhere = dataclasses.replace(s3_location, bucket="tubei-no-such-bucket")
    store = S3BlobStore(elsewhere, tmp_path / "tmp", executor, attempts=1)
    try:
        with pytest.raises(StorageUnavailable, match=r"tubei-no-such-bucket.*cannot be used"):
            await store.start()
    finally:
        await store.close()
        executor.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_kept_files_are_few_and_small(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_store, "KEPT_FILES", 2)
    monkeypatch.setattr(s3_store, "KEPT_MAX_SIZE", 50_000)
    kept: list[str] = []
    for size in (10_000, 20_000, 30_000, 60_000):
        writer, sha256 = await staged(store, os.urandom(size))
        await store.commit(writer)
        await writer.abort()
        kept.append(sha256)
    on_disk = sorted(p.name for p in store.staging_dir.glob("*.kept"))
    assert on_disk == sorted(f"{sha256}.kept" for sha256 in kept[1:3])  # the newest two
    assert list(store._kept) == kept[1:3]
