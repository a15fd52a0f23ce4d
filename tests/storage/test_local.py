"""LocalBlobStore: staged, hashed while written, committed under the sha256, on real files."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.storage.local import HEAD_BYTES, LocalBlobStore
from tests.storage.local_store import PAYLOAD, files_under, staged, staged_files, store

__all__ = ["store"]  # a fixture, used by name


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
