"""Videos' previews made once among processes sharing a PostgreSQL catalog and a data
folder: each takes a lease before it transcodes, the other leaves that video to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.ioloop

from server.config import Settings
from server.services import Services, build_services
from tests.conftest import CLOSE_TIMEOUT, close_within
from tests.imaging.videos import make_video


@pytest.fixture
def pair(
    tmp_path: Path, postgres_url: str, io_loop: tornado.ioloop.IOLoop
) -> Iterator[tuple[Services, Services]]:
    settings = Settings(data=tmp_path / "data", catalog=postgres_url)
    both = build_services(settings), build_services(settings)
    for services in both:
        io_loop.run_sync(services.start)
    yield both
    for services in both:
        close_within(io_loop, services, CLOSE_TIMEOUT)


@pytest.mark.gen_test(timeout=120)
async def test_two_processes_make_a_video_s_preview_once(
    pair: tuple[Services, Services], tmp_path: Path
) -> None:
    a, b = pair
    source = make_video(tmp_path / "IMG_1.MOV", fmt="mov", codec="libx265", frames=30, rate=30)
    user = await a.catalog.ensure_user("alice")
    async with a.library.writing() as writer:
        await writer.write(source.read_bytes())
        done = await a.library.ingest_one(user, writer, "IMG_1.MOV")
    a.previews.resume()
    b.previews.resume()
    await a.previews.drain()
    await b.previews.drain()
    made = a.previews.outcomes.get("made", 0) + b.previews.outcomes.get("made", 0)
    assert made == 1
    blob = await b.catalog.get_blob(done.image.sha256)
    assert blob is not None and blob.preview == "made"
    assert a.previews.path(blob.sha256).exists()
