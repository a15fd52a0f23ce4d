"""The derived-image queue: bounded in memory, backed by the catalog, one decode of a
photo at a time."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from server.catalog import BlobRecord
from server.config import Settings
from server.services import Services
from server.services.thumbnails import GRID
from tests.conftest import unique_jpeg


async def add_photos(services: Services, count: int) -> list[BlobRecord]:
    library, user = services.library, await services.catalog.ensure_user("alice")
    blobs = []
    for n in range(count):
        async with library.writing() as writer:
            await writer.write(unique_jpeg((640, 480)))
            ingested = await library.ingest_one(user, writer, f"IMG_{n}.jpg")
        blobs.append(ingested.image.blob)
    return blobs


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data=tmp_path / "data",
        gc_interval=3600,
        decode_queue=2,
        decode_attempts=2,
        decode_timeout=0.1,  # its FIFO is given up after 1 s of waiting
    )


@pytest.mark.gen_test(timeout=30)
async def test_the_queue_holds_a_few_hashes_and_the_catalog_the_rest(services: Services) -> None:
    thumbnails = services.library.thumbnails
    seen: list[int] = []
    real = thumbnails.schedule

    def watching(blob: BlobRecord) -> None:
        real(blob)
        seen.append(len(thumbnails._queue))
        assert thumbnails.queue_state().queued == len(thumbnails._queue)

    thumbnails.schedule = watching  # type: ignore[method-assign]
    blobs = await add_photos(services, 7)
    assert max(seen) <= 2
    await thumbnails.drain()
    for blob in blobs:
        stored = await services.catalog.get_blob(blob.sha256)
        assert stored is not None and stored.thumbnail is True
        assert thumbnails.path(blob.sha256, GRID).is_file()
    assert await services.catalog.pending_thumbnails() == []
    drained = thumbnails.queue_state()
    assert (drained.queued, drained.active, drained.in_catalog, drained.lag) == (0, 0, False, 0)


@pytest.mark.gen_test(timeout=30)
async def test_one_decode_of_a_photo_however_many_ask_at_once(services: Services) -> None:
    """Views and background runners asking together share one decode, and all are
    answered: none of them is left waiting on a decode that was never its own."""
    thumbnails = services.library.thumbnails
    [blob] = await add_photos(services, 1)
    await thumbnails.drain()
    for path in thumbnails.root.rglob("*.jpg"):
        path.unlink()
    fresh = dataclasses.replace(blob, thumbnail=None)
    asked = [thumbnails.ensure(fresh, GRID) for _ in range(3)]
    paths = await asyncio.wait_for(asyncio.gather(*asked), 20)
    assert paths == [thumbnails.path(blob.sha256, GRID)] * 3
    assert thumbnails.outcomes == {"made": 2}  # the upload's, and one for all three views
    assert thumbnails._decoding == {}
    # A later view still finds the photo free to decode.
    (path := thumbnails.path(blob.sha256, GRID)).unlink()
    assert await asyncio.wait_for(thumbnails.ensure(fresh, GRID), 20) == path
