"""LocalBlobStore's resumable writers (tus): digests rebuilt, synced, rewound to a mark."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from server.storage.local import HEAD_BYTES, LocalBlobStore
from tests.storage.local_store import PAYLOAD, store

__all__ = ["store"]  # a fixture, used by name

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
