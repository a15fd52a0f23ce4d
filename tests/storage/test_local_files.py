"""A placed blob is a second name of its staged file: nothing writes to that file again.

A tus upload's file stays in `tmp/tus/` until its writer is dropped; a process killed
between placing it and dropping it leaves both names on one inode, and a resume (or a
rewind after the catalog failed) must not change the stored bytes through it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.storage.local import LocalBlobStore
from server.storage.local_files import place, unshare

PAYLOAD = os.urandom(300_000)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalBlobStore]:
    executor = ThreadPoolExecutor(max_workers=4)
    yield LocalBlobStore(tmp_path / "blobs", tmp_path / "tmp", executor)
    executor.shutdown(wait=True)


async def placed_upload(store: LocalBlobStore, path: Path) -> None:
    """A resumable upload written whole, its durable offset at 100,000, then placed as a
    blob by a process that died before letting go of its file."""
    path.parent.mkdir(exist_ok=True)
    writer = await store.resume_writer(path, 0)
    await writer.write(PAYLOAD[:100_000])
    await writer.sync()
    await writer.write(PAYLOAD[100_000:])
    await writer.finish()
    assert await store.commit(writer)
    assert os.stat(path).st_nlink == 2


@pytest.mark.gen_test
async def test_a_finished_writer_refuses_to_write(store: LocalBlobStore) -> None:
    writer = store.open_writer()
    await writer.write(PAYLOAD)
    await writer.finish()
    await store.commit(writer)
    with pytest.raises(RuntimeError, match="finished"):
        await writer.write(b"more")
    assert store.path_for(SHA256).read_bytes() == PAYLOAD
    await writer.abort()
    assert store.path_for(SHA256).read_bytes() == PAYLOAD


@pytest.mark.gen_test
async def test_resuming_a_placed_upload_leaves_the_blob_whole(store: LocalBlobStore) -> None:
    path = store.tmp_dir / "tus" / "upload-a"
    await placed_upload(store, path)
    final = store.path_for(SHA256)

    # Another process resumes the upload at its recorded offset: it cuts the file there.
    resumed = await store.resume_writer(path, 100_000)
    assert resumed.size == 100_000
    assert final.read_bytes() == PAYLOAD  # the blob kept every byte
    assert final.stat().st_nlink == 1 and path.stat().st_nlink == 1
    assert not path.samefile(final)
    assert path.read_bytes() == PAYLOAD[:100_000]
    assert sorted(p.name for p in path.parent.iterdir()) == ["upload-a"]  # no copy left
    await resumed.write(b"different bytes, sent by a confused client")
    await resumed.sync()
    assert final.read_bytes() == PAYLOAD
    await resumed.abort()
    assert final.read_bytes() == PAYLOAD


@pytest.mark.gen_test
async def test_rewinding_a_placed_writer_leaves_the_blob_whole(store: LocalBlobStore) -> None:
    """The catalog failed after the file was placed: the upload goes back to its mark."""
    path = store.tmp_dir / "tus" / "upload-b"
    path.parent.mkdir()
    writer = await store.resume_writer(path, 0)
    await writer.write(PAYLOAD[:100_000])
    await writer.sync()
    writer.mark()
    await writer.write(PAYLOAD[100_000:])
    await writer.finish()
    assert await store.commit(writer)
    await writer.rewind()
    final = store.path_for(SHA256)
    assert final.read_bytes() == PAYLOAD
    assert path.read_bytes() == PAYLOAD[:100_000]
    assert writer.size == 100_000
    # The writer is a live one again, on a file of its own.
    await writer.write(PAYLOAD[100_000:])
    result = await writer.finish()
    assert (result.sha256, result.size) == (SHA256, len(PAYLOAD))
    assert final.read_bytes() == PAYLOAD
    await writer.abort()


def test_place_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    staged, final = tmp_path / "staged", tmp_path / "final"
    staged.write_bytes(b"good")
    final.write_bytes(b"bad!")
    place(staged, final)
    assert final.read_bytes() == b"good" and final.samefile(staged)
    place(staged, final)  # over another name of itself: nothing changes, nothing is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "staged"]
    assert final.stat().st_nlink == 2


def test_unshare_leaves_a_single_name_alone(tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    alone.write_bytes(b"abc")
    inode = alone.stat().st_ino
    assert unshare(alone, 2) is False
    assert alone.stat().st_ino == inode and alone.read_bytes() == b"abc"
