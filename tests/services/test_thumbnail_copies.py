"""DerivedCopies on a real store of derived images (the local one: the S3 one is the
same contract, and the server's run on the gateway is in tests/handlers/test_s3_serving.py)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tornado.ioloop

from server.services.thumbnail_copies import DerivedCopies, key_for
from server.storage.home import DerivedStore
from server.storage.local import LocalBlobStore
from server.storage.local_home import LocalBlobHome

SHA = "ab" * 32


@pytest.fixture
def home(tmp_path: Path, io_loop: tornado.ioloop.IOLoop) -> Iterator[LocalBlobHome]:
    executor = ThreadPoolExecutor(2)
    store = LocalBlobStore(tmp_path / "blobs", tmp_path / "tmp", executor)
    yield LocalBlobHome(store, tmp_path / "derived")
    io_loop.run_sync(store.close)
    executor.shutdown()


def copies_of(home: LocalBlobHome) -> DerivedCopies:
    async def opened() -> DerivedStore:
        return home.derived

    return DerivedCopies(opened, home.store._executor)


def test_keys_are_by_sha256() -> None:
    assert key_for(Path(f"/x/ab/ab/{SHA}-360-v3.jpg")) == f"{SHA}/{SHA}-360-v3.jpg"


@pytest.mark.gen_test
async def test_published_fetched_and_removed(home: LocalBlobHome, tmp_path: Path) -> None:
    copies = copies_of(home)
    made = tmp_path / "thumbs" / "ab" / "ab" / f"{SHA}-360-v3.jpg"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"\xff\xd8 a thumbnail")
    await copies.publish([made])
    assert await home.derived.get(key_for(made)) == b"\xff\xd8 a thumbnail"
    made.unlink()
    assert await copies.fetch(made) is True and made.read_bytes() == b"\xff\xd8 a thumbnail"
    assert [p.name for p in made.parent.iterdir()] == [made.name]  # no temp file left
    await copies.remove([made])
    made.unlink()
    assert await copies.fetch(made) is False and not made.exists()
