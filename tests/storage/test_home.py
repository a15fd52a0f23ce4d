"""The BlobHome contract, run the same way on the local disk and on a real Ceph gateway."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.ioloop

from server.storage import BlobMissing
from server.storage.home import BlobHome, DerivedStore
from server.storage.local import LocalBlobStore
from server.storage.local_home import LocalBlobHome
from server.storage.s3 import S3BlobHome

MIB = 1024 * 1024
S3_TIMEOUT = 120  # first test of the session waits for the gateway inside the fixture


@pytest.fixture(params=["local", "s3"])
def home(
    request: pytest.FixtureRequest, tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> Iterator[BlobHome]:
    executor = ThreadPoolExecutor(max_workers=4)
    built: BlobHome
    if request.param == "local":
        store = LocalBlobStore(tmp_path / "blobs", tmp_path / "tmp", executor)
        built = LocalBlobHome(store)
    else:
        location = request.getfixturevalue("s3_location")

        async def open_home() -> S3BlobHome:
            return await S3BlobHome.open(location, attempts=2, executor=executor)

        built = io_loop.run_sync(open_home)
    yield built
    io_loop.run_sync(built.close)
    executor.shutdown(wait=True)


def derived_of(home: BlobHome) -> DerivedStore:
    assert isinstance(home, LocalBlobHome | S3BlobHome)
    return home.derived


def stage(folder: Path, data: bytes) -> tuple[Path, str]:
    sha256 = hashlib.sha256(data).hexdigest()
    path = folder / f"{sha256[:8]}.part"
    path.write_bytes(data)
    return path, sha256


async def put(home: BlobHome, folder: Path, data: bytes) -> str:
    path, sha256 = stage(folder, data)
    assert await home.put(path, sha256) is True
    path.unlink(missing_ok=True)
    return sha256


async def read_all(home: BlobHome, sha256: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in home.read(sha256, start, end)])


def read_file(path: str) -> bytes:
    return Path(path).read_bytes()


MISSING = "0" * 64
DATA = os.urandom(700_001)


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_put_then_read_whole_and_size(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, DATA)
    assert await home.exists(sha256)
    assert await home.size(sha256) == len(DATA)
    assert await read_all(home, sha256) == DATA


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_put_skips_what_is_there(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, DATA)
    again, _ = stage(tmp_path, DATA)
    assert await home.put(again, sha256) is False
    assert await read_all(home, sha256) == DATA


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_ranged_reads(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, DATA)
    size = len(DATA)
    assert await read_all(home, sha256, 0, 1) == DATA[:1]
    assert await read_all(home, sha256, size - 1) == DATA[-1:]
    assert await read_all(home, sha256, size - 1, size) == DATA[-1:]
    assert await read_all(home, sha256, 12_345, 654_321) == DATA[12_345:654_321]
    assert await read_all(home, sha256, 0, size) == DATA
    assert await read_all(home, sha256, 5, 5) == b""
    for start, end in ((0, size + 1), (size + 1, None), (10, 9), (-1, 3)):
        with pytest.raises(ValueError):
            await read_all(home, sha256, start, end)


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_empty_blob(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, b"")
    assert await home.size(sha256) == 0
    assert await read_all(home, sha256) == b""
    assert await home.rehash(sha256) == sha256


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_missing_blobs(home: BlobHome) -> None:
    assert not await home.exists(MISSING)
    with pytest.raises(BlobMissing):
        await home.size(MISSING)
    with pytest.raises(BlobMissing):
        await read_all(home, MISSING)
    with pytest.raises(BlobMissing):
        await home.rehash(MISSING)
    with pytest.raises(BlobMissing):
        await home.quarantine(MISSING, "damaged")
    await home.delete(MISSING)  # nothing there: nothing to do


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_names_are_checked(home: BlobHome, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await home.exists("../../etc/passwd")
    with pytest.raises(ValueError):
        await home.put(tmp_path, "not-a-sha")
    sha256 = await put(home, tmp_path, b"x")
    with pytest.raises(ValueError):
        await home.quarantine(sha256, "../up")
    assert await home.exists(sha256)


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_delete(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, DATA)
    await home.delete(sha256)
    assert not await home.exists(sha256)
    with pytest.raises(BlobMissing):
        await read_all(home, sha256)


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_list_in_pages(home: BlobHome, tmp_path: Path) -> None:
    names = sorted([await put(home, tmp_path, b"blob %d" % i) for i in range(53)])
    pages = [page async for page in home.pages(page_size=10)]
    assert [len(page) for page in pages] == [10, 10, 10, 10, 10, 3]
    assert [name for page in pages for name in page] == names
    after = [name async for page in home.pages(page_size=7, after=names[40]) for name in page]
    assert after == names[41:]


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_rehash_reports_progress(home: BlobHome, tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 17)
    sha256 = await put(home, tmp_path, data)
    seen: list[int] = []
    assert await home.rehash(sha256, seen.append) == sha256
    assert seen and seen[-1] == len(data)
    assert seen == sorted(seen)


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_quarantine_moves_aside(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, DATA)
    where = await home.quarantine(sha256, "damaged")
    assert sha256 in where and "damaged" in where
    assert not await home.exists(sha256)
    assert [page async for page in home.pages()] == []
    if isinstance(home, LocalBlobHome):
        assert read_file(where) == DATA
    else:
        assert isinstance(home, S3BlobHome)
        key = where.removeprefix(f"s3://{home.bucket}/")
        answer = await home._client.get_object(Bucket=home.bucket, Key=key)
        assert await answer["Body"].read() == DATA


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_a_damaged_copy_of_another_size_is_replaced(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, DATA)
    if isinstance(home, LocalBlobHome):
        home.store.path_for(sha256).write_bytes(DATA[:100])
    else:
        assert isinstance(home, S3BlobHome)
        await home._client.put_object(Bucket=home.bucket, Key=home.key(sha256), Body=DATA[:100])
    staged, _ = stage(tmp_path, DATA)
    assert await home.put(staged, sha256) is True
    assert await home.rehash(sha256) == sha256


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_large_object_multipart_and_bounded_ranged_read(
    home: BlobHome, tmp_path: Path
) -> None:
    data = os.urandom(20 * MIB + 5)
    staged, sha256 = stage(tmp_path, data)
    assert await home.put(staged, sha256) is True
    assert await home.size(sha256) == len(data)
    if isinstance(home, S3BlobHome):  # three parts of 8, 8 and 4 MiB
        head = await home._client.head_object(Bucket=home.bucket, Key=home.key(sha256))
        assert head["ETag"].strip('"').endswith("-3")
    tracemalloc.start()
    try:
        hasher, largest = hashlib.sha256(), 0
        async for chunk in home.read(sha256, MIB, len(data) - 1):
            hasher.update(chunk)
            largest = max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hasher.hexdigest() == hashlib.sha256(data[MIB:-1]).hexdigest()
    assert largest <= 1 * MIB
    assert peak < 8 * MIB, f"a ranged read of 19 MiB held {peak} bytes at its peak"


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_presigned_url(home: BlobHome, tmp_path: Path) -> None:
    sha256 = await put(home, tmp_path, DATA)
    url = await home.presigned_url(sha256, 60)
    if isinstance(home, LocalBlobHome):
        assert url is None
        return
    assert url is not None
    client = tornado.httpclient.AsyncHTTPClient()
    answer = await client.fetch(url)
    assert answer.body == DATA
    with pytest.raises(ValueError):
        await home.presigned_url(sha256, 0)


@pytest.mark.gen_test(timeout=S3_TIMEOUT)
async def test_derived_images(home: BlobHome) -> None:
    derived = derived_of(home)
    key = f"{'a' * 64}/360.jpg"
    with pytest.raises(BlobMissing):
        await derived.get(key)
    await derived.put(key, b"first")
    await derived.put(key, b"second")
    assert await derived.get(key) == b"second"
    await derived.delete(key)
    await derived.delete(key)
    with pytest.raises(BlobMissing):
        await derived.get(key)
    for bad in ("../x", "/abs", "a//b", "A B", ""):
        with pytest.raises(ValueError):
            await derived.put(bad, b"x")
    assert [page async for page in home.pages()] == []  # not among the blobs
