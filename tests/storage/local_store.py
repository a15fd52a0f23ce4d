"""A LocalBlobStore on real files for the storage tests, and what it has staged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.storage.local import LocalBlobStore, LocalBlobWriter
from server.storage.local_staging import LOCK_NAME


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
