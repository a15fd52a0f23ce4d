"""A decode attempt: counted in the catalog before it starts, so that a photo whose
decodes keep failing (killing their worker, or the server) is kept without thumbnails."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from server.services import Services
from server.services.thumbnails import GRID
from tests.services.test_thumbnails import add_photos


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data=tmp_path / "data",
        gc_interval=3600,
        decode_attempts=2,
        decode_timeout=0.1,  # its FIFO is given up after 1 s of waiting
    )


@pytest.mark.gen_test(timeout=30)
async def test_a_photo_that_keeps_killing_its_decode_is_kept_without_thumbnails(
    services: Services,
) -> None:
    thumbnails = services.library.thumbnails
    [blob] = await add_photos(services, 1)
    await thumbnails.drain()
    bad = dataclasses.replace(blob, sha256="b" * 64, thumbnail=None)
    user = await services.catalog.ensure_user("alice")
    await services.catalog.add_image(user.id, bad, "bad.jpg", time.time())
    # Its original: a decode that never ends (a FIFO no one writes), killed at each timeout.
    bad_path = services.store.local_path(bad.sha256)
    assert bad_path is not None
    bad_path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(bad_path)
    thumbnails.schedule(bad)
    await thumbnails.drain()
    stored = await services.catalog.get_blob(bad.sha256)
    assert stored is not None and stored.thumbnail is False
    assert await thumbnails.ensure(stored, GRID) is None
    assert thumbnails.outcomes == {"made": 1, "failed": 2}  # what the metrics count
    # The others are served as ever.
    assert await thumbnails.ensure(blob, GRID) == thumbnails.path(blob.sha256, GRID)


@pytest.mark.gen_test(timeout=30)
async def test_a_restart_does_not_decode_a_photo_its_attempts_ran_out_on(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    [blob] = await add_photos(services, 1)
    await services.library.thumbnails.drain()
    victim = dataclasses.replace(blob, sha256="c" * 64, thumbnail=None)
    user = await services.catalog.ensure_user("alice")
    await services.catalog.add_image(user.id, victim, "c.jpg", time.time())
    # Two starts whose decode of it took the server down mid-way: counted, never settled.
    assert await services.catalog.attempt_thumbnail(victim.sha256) == 1
    assert await services.catalog.attempt_thumbnail(victim.sha256) == 2

    async def no_decoding(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(services.library.thumbnails.pool, "render", no_decoding)
    monkeypatch.setattr(services.store, "local_path", lambda sha: Path("/dev/null"))
    report = await services.library.recover()
    assert report.thumbnails_rescheduled == 1
    await services.library.thumbnails.drain()
    stored = await services.catalog.get_blob(victim.sha256)
    assert stored is not None and stored.thumbnail is False
