"""LocalBlobStore's integrity: replacing, listing, re-reading, quarantining, a real full disk."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.storage import BlobMissing, StorageFull
from server.storage.local import LocalBlobStore
from tests.small_disk import fill, small_disk
from tests.storage.local_store import PAYLOAD, files_under, staged, staged_files, store

__all__ = ["small_disk", "store"]  # fixtures, used by name


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
