"""The graveyard: gc moves a blob's file aside, then deletes it or puts it back."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.storage.local import LocalBlobStore
from tests.storage.local_store import PAYLOAD, staged


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalBlobStore]:
    executor = ThreadPoolExecutor(max_workers=4)
    yield LocalBlobStore(tmp_path / "data" / "blobs", tmp_path / "data" / "tmp", executor)
    executor.shutdown(wait=True)


async def stored(store: LocalBlobStore) -> str:
    writer = await staged(store, PAYLOAD)
    await store.commit(writer)
    await writer.abort()
    return writer.result.sha256


@pytest.mark.gen_test
async def test_bury_then_discard(store: LocalBlobStore, tmp_path: Path) -> None:
    sha256 = await stored(store)
    grave = await store.bury(sha256)
    assert grave is not None and grave.startswith(sha256 + ".")
    assert not store.path_for(sha256).exists()
    assert (tmp_path / "data" / "graveyard" / grave).read_bytes() == PAYLOAD
    assert not await store.exists(sha256)
    assert await store.bury(sha256) is None  # nothing left to bury
    await store.discard(grave)
    await store.discard(grave)  # twice is fine
    assert list((tmp_path / "data" / "graveyard").iterdir()) == []


@pytest.mark.gen_test
async def test_unbury_puts_back_unless_a_file_is_in_place(store: LocalBlobStore) -> None:
    sha256 = await stored(store)
    grave = await store.bury(sha256)
    assert grave is not None
    assert await store.unbury(grave) is True
    assert store.path_for(sha256).read_bytes() == PAYLOAD
    assert await store.graves(0) == []

    grave = await store.bury(sha256)
    assert grave is not None
    await stored(store)  # an ingest placed the bytes again meanwhile
    placed = store.path_for(sha256).stat().st_ino
    assert await store.unbury(grave) is False
    assert store.path_for(sha256).stat().st_ino == placed  # not replaced
    assert await store.graves(0) == []
    assert await store.unbury(grave) is False  # settled by someone else: nothing to do


@pytest.mark.gen_test
async def test_graves_lists_what_was_left_unsettled(store: LocalBlobStore) -> None:
    sha256 = await stored(store)
    grave = await store.bury(sha256)
    assert grave is not None
    assert await store.graves(3600) == []  # its collector may still be at it
    assert await store.graves(0) == [grave]
    with pytest.raises(ValueError):
        await store.discard("../blobs/" + grave)


@pytest.mark.gen_test
async def test_changed_at_is_the_stored_file_s_ctime(store: LocalBlobStore) -> None:
    writer = await staged(store, PAYLOAD)
    long_ago = time.time() - 86400
    os.utime(writer.staged_path, (long_ago, long_ago))
    await store.commit(writer)
    final = store.path_for(writer.result.sha256)
    # Not the modification time, which an upload's file keeps from its last write.
    assert await store.changed_at(writer.result.sha256) == final.stat().st_ctime
    assert final.stat().st_mtime == pytest.approx(long_ago)
    assert await store.changed_at("0" * 64) is None
    await writer.abort()
