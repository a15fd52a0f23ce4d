"""LocalBlobStore: staged, hashed while written, committed under the sha256, on real files."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.storage import BlobMissing, StorageFull
from server.storage.local import HEAD_BYTES, LocalBlobStore, LocalBlobWriter
from server.storage.local_staging import LOCK_NAME
from tests.small_disk import fill, small_disk

__all__ = ["small_disk"]  # a fixture, used by name


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalBlobStore]:
    executor = ThreadPoolExecutor(max_workers=4)
    yield LocalBlobStore(tmp_path / "blobs", tmp_path / "tmp", executor)
    executor.shutdown(wait=True)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def staged_files(store: LocalBlobStore) -> list[Path]:
    """What is staged under the store's tmp/, its own staging folder's lock file aside."""
    return [p for p in files_under(store.tmp_dir) if p != store.staging_dir / LOCK_NAME]


async def staged(store: LocalBlobStore, data: bytes, chunk: int = 65536) -> LocalBlobWriter:
    writer = store.open_writer()
    for start in range(0, len(data), chunk):
        await writer.write(data[start : start + chunk])
    await writer.finish()
    return writer


PAYLOAD = os.urandom(300_000)


@pytest.mark.gen_test
async def test_bytes_are_hashed_as_written(store: LocalBlobStore) -> None:
    writer = store.open_writer()
    for start in range(0, len(PAYLOAD), 7_777):
        await writer.write(PAYLOAD[start : start + 7_777])
    await writer.write(b"")
    assert writer.size == len(PAYLOAD)
    assert writer.head == PAYLOAD[:HEAD_BYTES]
    result = await writer.finish()
    assert result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert result.md5 == hashlib.md5(PAYLOAD).hexdigest()
    assert result.size == len(PAYLOAD)
    assert writer.staged_path.parent == store.staging_dir
    assert writer.staged_path.read_bytes() == PAYLOAD
    assert await writer.finish() == result


@pytest.mark.gen_test
async def test_head_is_the_first_bytes_even_from_small_writes(store: LocalBlobStore) -> None:
    writer = store.open_writer()
    for byte in PAYLOAD[: HEAD_BYTES + 10]:
        await writer.write(bytes([byte]))
    assert writer.head == PAYLOAD[:HEAD_BYTES]
    await writer.abort()


@pytest.mark.gen_test
async def test_commit_places_the_blob_under_its_hash(store: LocalBlobStore) -> None:
    writer = await staged(store, PAYLOAD)
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    assert await store.commit(writer) is True
    final = store.root / sha256[:2] / sha256[2:4] / sha256
    assert final.read_bytes() == PAYLOAD
    assert store.local_path(sha256) == final
    assert await store.exists(sha256)
    assert files_under(store.root) == [final]
    # A second name of the staged file, which stays until its writer is dropped.
    assert staged_files(store) == [writer.staged_path]
    assert writer.staged_path.samefile(final)
    await writer.abort()  # what the library does after every commit: must not touch the blob
    assert final.read_bytes() == PAYLOAD
    assert staged_files(store) == []
    assert final.stat().st_nlink == 1


@pytest.mark.gen_test
async def test_same_bytes_twice_is_one_file(store: LocalBlobStore) -> None:
    first = await staged(store, PAYLOAD)
    second = await staged(store, PAYLOAD, chunk=1000)
    assert await store.commit(first) is True
    assert await store.commit(second) is False
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    assert [p.name for p in files_under(store.root)] == [sha256]
    # The second took the name over, atomically: the stored file is its staged file now.
    assert second.staged_path.samefile(store.path_for(sha256))
    await first.abort()
    await second.abort()
    assert staged_files(store) == []
    assert store.path_for(sha256).read_bytes() == PAYLOAD


@pytest.mark.gen_test
async def test_commit_needs_a_finished_writer(store: LocalBlobStore) -> None:
    writer = store.open_writer()
    await writer.write(b"half")
    with pytest.raises(RuntimeError):
        await store.commit(writer)
    await writer.abort()
    assert files_under(store.root) == []


@pytest.mark.gen_test
async def test_abort_removes_the_staged_file(store: LocalBlobStore) -> None:
    writer = store.open_writer()
    await writer.write(PAYLOAD[:1000])
    assert writer.staged_path.exists()
    await writer.abort()
    assert not writer.staged_path.exists()
    await writer.abort()  # twice is safe
    finished = await staged(store, PAYLOAD)
    await finished.abort()
    assert staged_files(store) == []
    assert files_under(store.root) == []
    await store.open_writer().abort()  # never written to


@pytest.mark.gen_test
async def test_clean_staging_removes_only_old_staged_files(store: LocalBlobStore) -> None:
    old = store.open_writer()
    await old.write(b"abandoned upload")
    fresh = store.open_writer()
    await fresh.write(b"upload in progress")
    other = store.tmp_dir / "not-staged.txt"
    other.write_bytes(b"x")
    hours_ago = time.time() - 7 * 3600
    os.utime(old.staged_path, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))

    assert await store.clean_staging(6 * 3600) == 1
    assert not old.staged_path.exists()
    assert fresh.staged_path.exists()
    assert other.exists()
    assert await store.clean_staging(6 * 3600) == 0
    await fresh.write(b" still going")
    await fresh.finish()
    assert await store.commit(fresh)
    await old.abort()


@pytest.mark.gen_test
async def test_all_blobs_lists_committed_blobs(store: LocalBlobStore) -> None:
    datas = [os.urandom(100 + n) for n in range(5)]
    for data in datas:
        assert await store.commit(await staged(store, data))
    stray = store.root / "ab" / "cd" / "notes.txt"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("not a blob")
    listed = [sha async for sha in store.all_blobs()]
    assert listed == sorted(hashlib.sha256(d).hexdigest() for d in datas)


@pytest.mark.gen_test
async def test_delete_removes_and_is_idempotent(store: LocalBlobStore) -> None:
    keep, gone = os.urandom(500), os.urandom(600)
    await store.commit(await staged(store, keep))
    await store.commit(await staged(store, gone))
    gone_sha = hashlib.sha256(gone).hexdigest()
    await store.delete(gone_sha)
    assert not await store.exists(gone_sha)
    assert [sha async for sha in store.all_blobs()] == [hashlib.sha256(keep).hexdigest()]
    await store.delete(gone_sha)
    # A blob the catalog knows but whose file (and folder) is gone must not break gc.
    await store.delete("0" * 64)
    assert [sha async for sha in store.all_blobs()] == [hashlib.sha256(keep).hexdigest()]


@pytest.mark.parametrize("name", ["../x", "../../etc/passwd", "A" * 64, "0" * 63, "", "0" * 65])
def test_only_sha256_names_become_paths(store: LocalBlobStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.path_for(name)


@pytest.mark.gen_test
async def test_store_creates_its_folders_and_close_removes_its_staging(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        store = LocalBlobStore(tmp_path / "a" / "blobs", tmp_path / "a" / "tmp", executor)
        assert (tmp_path / "a" / "blobs").is_dir()
        assert store.staging_dir.parent == tmp_path / "a" / "tmp"
        assert store.staging_dir.is_dir()
        writer = store.open_writer()
        await writer.write(b"never finished")
        await writer.sync()
        await store.close()
        await store.close()
    assert list((tmp_path / "a" / "tmp").iterdir()) == []


# resumable writers (tus) ----------------------------------------------------------


def open_files() -> set[Path]:
    """The files this process has open (Linux)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(Path(os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            continue
    return found


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


@pytest.mark.gen_test
async def test_a_resumed_writer_rebuilds_digests_and_cuts_what_follows(
    store: LocalBlobStore,
) -> None:
    path = store.tmp_dir / "tus" / "upload-a"
    path.parent.mkdir()
    writer = await store.resume_writer(path, 0)
    assert writer.size == 0 and not path.exists()
    await writer.write(PAYLOAD[:200_000])
    await writer.sync()
    # Past the durable offset: bytes a crash left behind, never recorded.
    with path.open("ab") as file:
        file.write(b"junk that was never acknowledged")

    resumed = await store.resume_writer(path, 200_000)
    assert resumed.size == 200_000
    assert resumed.head == PAYLOAD[:HEAD_BYTES]
    assert path.stat().st_size == 200_000
    await resumed.write(PAYLOAD[200_000:])
    result = await resumed.finish()
    assert (result.sha256, result.md5) == digests(PAYLOAD)
    assert result.size == len(PAYLOAD)
    assert path.read_bytes() == PAYLOAD
    assert await store.commit(resumed)
    await resumed.abort()
    assert not path.exists()
    assert store.path_for(result.sha256).read_bytes() == PAYLOAD


@pytest.mark.gen_test
async def test_a_resumed_writer_takes_a_short_file_as_it_is(store: LocalBlobStore) -> None:
    path = store.tmp_dir / "short"
    path.write_bytes(PAYLOAD[:10])
    resumed = await store.resume_writer(path, 5000)
    assert resumed.size == 10
    assert resumed.head == PAYLOAD[:10]
    missing = await store.resume_writer(store.tmp_dir / "missing", 5000)
    assert missing.size == 0
    await missing.write(b"fresh")
    await missing.sync()
    assert (store.tmp_dir / "missing").read_bytes() == b"fresh"


@pytest.mark.gen_test
async def test_sync_makes_bytes_durable_and_lets_go_of_the_file(store: LocalBlobStore) -> None:
    path = store.tmp_dir / "synced"
    writer = await store.resume_writer(path, 0)
    await writer.write(PAYLOAD[:1000])
    assert path.resolve() in open_files()
    await writer.sync()
    assert path.resolve() not in open_files()
    assert path.read_bytes() == PAYLOAD[:1000]
    await writer.sync()  # nothing written since: nothing to do
    await writer.write(PAYLOAD[1000:5000])
    await writer.sync()
    assert path.read_bytes() == PAYLOAD[:5000]
    result = await writer.finish()
    assert (result.sha256, result.md5) == digests(PAYLOAD[:5000])
    await writer.abort()
    assert not path.exists()


@pytest.mark.gen_test
async def test_rewind_drops_what_followed_the_mark(store: LocalBlobStore) -> None:
    path = store.tmp_dir / "rewound"
    writer = await store.resume_writer(path, 0)
    writer.mark()
    await writer.write(b"bad head " * 100)
    await writer.rewind()  # back to nothing, head included
    assert writer.size == 0 and writer.head == b""
    assert path.stat().st_size == 0

    await writer.write(PAYLOAD[:50_000])
    await writer.sync()
    writer.mark()
    await writer.write(os.urandom(30_000))  # still open and buffered
    await writer.rewind()
    assert writer.size == 50_000
    assert path.read_bytes() == PAYLOAD[:50_000]
    await writer.write(os.urandom(20_000))
    await writer.sync()  # already on disk, file let go
    await writer.rewind()  # the mark can be used again
    assert path.read_bytes() == PAYLOAD[:50_000]

    await writer.write(PAYLOAD[50_000:])
    result = await writer.finish()
    assert (result.sha256, result.md5) == digests(PAYLOAD)
    assert writer.head == PAYLOAD[:HEAD_BYTES]
    await writer.abort()


@pytest.mark.gen_test
async def test_rewind_needs_a_mark(store: LocalBlobStore) -> None:
    writer = await store.resume_writer(store.tmp_dir / "unmarked", 0)
    await writer.write(b"data")
    with pytest.raises(RuntimeError):
        await writer.rewind()
    await writer.abort()


# integrity: replacing, listing, re-reading, quarantining ------------------------------


@pytest.mark.gen_test
async def test_committing_again_replaces_a_file_gone_bad_or_missing(store: LocalBlobStore) -> None:
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    assert await store.commit(await staged(store, PAYLOAD)) is True
    final = store.path_for(sha256)
    rotten = bytearray(PAYLOAD)
    rotten[1234] ^= 0x01
    final.write_bytes(rotten)
    assert await store.commit(await staged(store, PAYLOAD)) is False  # it was there
    assert final.read_bytes() == PAYLOAD
    final.unlink()
    assert await store.commit(await staged(store, PAYLOAD)) is True
    assert final.read_bytes() == PAYLOAD
    assert len(staged_files(store)) == 3  # until their writers are dropped


@pytest.mark.gen_test
async def test_all_blobs_is_in_order_across_folders(store: LocalBlobStore) -> None:
    names = []
    for _ in range(12):
        data = os.urandom(100)
        assert await store.commit(await staged(store, data))
        names.append(hashlib.sha256(data).hexdigest())
    stray = store.path_for(names[0]).parent / "not-a-blob"
    stray.write_bytes(b"left by hand")
    assert [sha async for sha in store.all_blobs()] == sorted(names)


@pytest.mark.gen_test(timeout=20)
async def test_rehash_reads_the_file_again_in_bounded_memory(store: LocalBlobStore) -> None:
    data = os.urandom(40 * 1024 * 1024)
    sha256 = hashlib.sha256(data).hexdigest()
    assert await store.commit(await staged(store, data, chunk=4 * 1024 * 1024))
    del data
    seen: list[int] = []
    tracemalloc.start()
    try:
        assert await store.rehash(sha256, seen.append) == sha256
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"{peak} bytes at the peak for a 40 MiB blob"
    assert len(seen) >= 5 and seen == sorted(seen) and seen[-1] == 40 * 1024 * 1024

    with store.path_for(sha256).open("r+b") as file:
        file.seek(20_000_000)
        file.write(b"\xff")
    assert await store.rehash(sha256) != sha256
    with pytest.raises(BlobMissing):
        await store.rehash(hashlib.sha256(b"never stored").hexdigest())


@pytest.mark.gen_test
async def test_quarantine_moves_a_blob_aside_never_over_another(store: LocalBlobStore) -> None:
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    moved = []
    for _ in range(2):
        assert await store.commit(await staged(store, PAYLOAD))
        moved.append(Path(await store.quarantine(sha256, "mismatch")))
        assert not store.path_for(sha256).exists()
    assert moved[0] != moved[1]
    assert sorted(files_under(store.quarantine_dir)) == sorted(moved)
    assert all(path.parent == store.quarantine_dir / "mismatch" for path in moved)
    assert all(path.read_bytes() == PAYLOAD for path in moved)
    assert store.quarantine_dir == store.root.parent / "quarantine"
    with pytest.raises(BlobMissing):
        await store.quarantine(sha256, "mismatch")
    with pytest.raises(ValueError):
        await store.quarantine(sha256, "../elsewhere")


# a real full disk --------------------------------------------------------------------


@pytest.mark.gen_test
async def test_real_disk_full_abort_still_removes_and_finish_is_storage_full(
    small_disk: Path,
) -> None:
    executor = ThreadPoolExecutor(max_workers=2)
    store = LocalBlobStore(small_disk / "blobs", small_disk / "tmp", executor)
    try:
        dropped, finished = store.open_writer(), store.open_writer()
        for writer in (dropped, finished):
            await writer.write(b"x" * 100)  # buffered: the file is there, still empty
        filler = fill(small_disk)
        # Closing flushes what is still buffered, which fails: the file goes all the same.
        await dropped.abort()
        with pytest.raises(StorageFull):
            await finished.finish()
        await finished.abort()
        assert staged_files(store) == []
        filler.unlink()
    finally:
        executor.shutdown(wait=True)
