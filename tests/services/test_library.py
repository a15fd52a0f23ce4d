"""LibraryService.recover: what a crash left half-done is cleared or finished at start-up."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator

import pytest

from server.catalog import BlobRecord
from server.config import Settings
from server.services import Services
from server.services.thumbnails import GRID, PREVIEW
from tests.conftest import unique_jpeg
from tests.staging_process import Child


@pytest.mark.gen_test(timeout=30)
async def test_recover_clears_debris_and_makes_the_thumbnails_a_crash_cut_short(
    services: Services, settings: Settings
) -> None:
    library = services.library
    # A photo committed just before the crash: blob and row, no thumbnails yet.
    writer = library.open_writer()
    await writer.write(unique_jpeg((800, 600)))
    staged = await library.check(writer, "IMG_1.jpg", "photo")
    assert staged.blob.thumbnail is None
    user = await services.catalog.ensure_user("alice")
    await services.store.commit(staged.writer)
    await services.catalog.add_image(user.id, staged.blob, "IMG_1.jpg", time.time())
    await staged.writer.abort()  # as every ingest does once it is recorded
    # An upload that was streaming, and a thumbnail half-written, when it died.
    debris = library.open_writer()
    await debris.write(b"\xff\xd8\xff" + bytes(1000))
    await debris.finish()
    half = settings.thumbs_dir / "ab" / "cd" / ".abcd-360-v1.jpg.1234.held.tmp"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"\xff\xd8partial")
    # A blob that cannot be decoded is not tried again.
    undecodable = dataclasses.replace(staged.blob, sha256="0" * 64, decodable=False)
    await services.catalog.add_image(user.id, undecodable, "bad.jpg", time.time())

    report = await library.recover()
    await library.thumbnails.drain()

    assert (report.staging_removed, report.thumbnail_temp_removed) == (1, 1)
    assert report.thumbnails_rescheduled == 1
    assert not debris.staged_path.exists() and not half.exists()
    # The grid size is made again; the preview waits for its first viewer.
    assert library.thumbnails.path(staged.blob.sha256, GRID).is_file()
    assert not library.thumbnails.path(staged.blob.sha256, PREVIEW).exists()
    blob = await services.catalog.get_blob(staged.blob.sha256)
    assert isinstance(blob, BlobRecord) and blob.thumbnail is True
    assert await services.catalog.pending_thumbnails() == []


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.stop()


@pytest.mark.gen_test(timeout=30)
async def test_recover_spares_what_another_live_server_is_writing(
    services: Services, settings: Settings, children: list[Child]
) -> None:
    """Several servers share the data folder: one starting up takes only the dead's."""
    folder = settings.thumbs_dir / "ab" / "cd"
    children.append(live := Child(settings.data, folder / "abcd-360-v1.jpg"))
    children.append(dead := Child(settings.data, folder / "abce-360-v1.jpg"))
    dead.kill()
    tus = settings.tus_dir / "0123abcd"
    tus.parent.mkdir(parents=True, exist_ok=True)
    tus.write_bytes(b"a resumable upload")
    assert live.temp is not None and dead.temp is not None

    report = await services.library.recover()

    assert (report.staging_removed, report.thumbnail_temp_removed) == (1, 1)
    assert not dead.folder.exists() and not dead.temp.exists()
    assert live.staged.read_bytes() == b"an upload in flight"
    assert live.temp.read_bytes() == b"half a thumbnail"
    assert tus.read_bytes() == b"a resumable upload"
    live.close()
    assert not live.folder.exists() and not live.temp.exists()
    assert (folder / "abcd-360-v1.jpg").read_bytes() == b"half a thumbnail"


@pytest.mark.gen_test(timeout=30)
async def test_gc_removes_only_stale_thumbnail_temp_files(
    services: Services, settings: Settings
) -> None:
    folder = settings.thumbs_dir / "12" / "34"
    folder.mkdir(parents=True)
    old, fresh = folder / ".old.jpg.1.tmp", folder / ".fresh.jpg.2.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    week_ago = time.time() - 7 * 86400
    os.utime(old, (week_ago, week_ago))
    report = await services.library.collect_garbage()
    assert not old.exists() and fresh.exists()
    assert report.thumbnails_removed == 1
