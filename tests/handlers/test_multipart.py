"""A multipart request is all-or-nothing, even when the disk fills part-way through its commit.

The files of a request are placed in the store one after another, then listed in
one catalog transaction. The storage seam is made to fail with ENOSPC on the third
file's placement (and, separately, the catalog to fill up on the third file's row):
the request answers 507, nothing of it is listed or announced, and what was placed
before the failure is an orphan that gc removes.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.ioloop

from server.catalog import BlobRecord, ImageRecord
from server.catalog.sqlite import SQLiteCatalog
from server.config import Settings
from server.services import Services, build_services
from server.services.events import Mailbox
from server.storage import local
from server.storage.local import LocalBlobStore
from server.views import event_json
from tests.conftest import CLOSE_TIMEOUT, Api, close_within
from tests.handlers.full_disk import FullCatalog, assert_full, blobs_in, post_photos
from tests.handlers.helpers import files_in, ids_in, photo, sha256
from tests.handlers.tus_client import user_of


class ThirdPlacementFails(LocalBlobStore):
    """The third blob placed meets a full disk as `os.replace` would report it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.placements = 0
        self.failing = True

    def _commit(self, staged: Path, sha256: str) -> bool:
        self.placements += 1
        if self.failing and self.placements == 3:
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError as error:
                local._raise_full(error)
                raise
        return super()._commit(staged, sha256)


class ThirdRowFails(FullCatalog):
    """The catalog fills up while recording the request's third file."""

    rows = 0
    failing = True

    def _add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        added = SQLiteCatalog._add_image(self, user_id, blob, filename, now)
        self.rows += 1
        if self.failing and self.rows == 3:
            self.full = frozenset({"add_image"})
            try:
                self._fill_up("add_image")
            finally:
                self.full = frozenset()
        return added


@pytest.fixture
def services(
    settings: Settings, io_loop: tornado.ioloop.IOLoop, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    monkeypatch.setattr("server.services.LocalBlobStore", ThirdPlacementFails)
    monkeypatch.setattr("server.services.SQLiteCatalog", ThirdRowFails)
    built = build_services(settings)
    yield built
    close_within(io_loop, built, CLOSE_TIMEOUT)


def store_of(services: Services) -> ThirdPlacementFails:
    assert isinstance(services.store, ThirdPlacementFails)
    return services.store


def catalog_of(services: Services) -> ThirdRowFails:
    assert isinstance(services.catalog, ThirdRowFails)
    return services.catalog


async def drained(mailbox: Mailbox, services: Services) -> list[dict[str, Any]]:
    """Every event so far, once the thumbnails (and their announcements) have settled."""
    await services.library.thumbnails.drain()
    await asyncio.sleep(0.2)
    events = []
    while len(mailbox):
        event = await mailbox.get()
        assert event is not None
        events.append(event_json(event))
    return events


async def assert_all_or_nothing(
    api: Api, services: Services, settings: Settings, mailbox: Mailbox, placed_first: int
) -> None:
    """`placed_first`: how many of the request's files reach the store before it fails."""
    photos = [photo(), photo(), photo(), photo()]
    files = [(f"f{n}", f"{n}.jpg", data) for n, data in enumerate(photos)]

    code, body = await post_photos(api, files, upload_id="batch-1")

    assert_full(code, body)
    assert await ids_in(api) == [], "nothing of the request is listed"
    for data in photos:
        assert await services.catalog.get_blob(sha256(data)) is None
    events = await drained(mailbox, services)
    assert [e["type"] for e in events if e["type"] != "upload.progress"] == ["upload.failed"]
    assert events[-1]["upload_id"] == "batch-1"
    assert events[-1]["error"]["code"] == "insufficient_storage"
    assert files_in(settings.tmp_dir) == [], "the request's staged files are dropped"
    # What went into the store before the failure is in no catalog entry: gc takes it,
    # once it has lain there for the grace period (an ingest may be about to record it).
    placed = blobs_in(settings)
    assert sorted(placed) == sorted(sha256(d) for d in photos[:placed_first])
    assert (await services.library.collect_garbage()).orphan_files == 0
    assert blobs_in(settings) == placed
    services.library.collector.grace = 0
    report = await services.library.collect_garbage()
    assert report.orphan_files == len(placed)
    assert blobs_in(settings) == []

    # The same request once there is room: every file, listed and announced.
    store_of(services).failing = catalog_of(services).failing = False
    code, body = await post_photos(api, files, upload_id="batch-2")
    assert code == 200, body
    assert [item["field"] for item in body["items"]] == ["f0", "f1", "f2", "f3"]
    assert sorted(await ids_in(api)) == sorted(sha256(d) for d in photos)
    events = await drained(mailbox, services)
    done = [e for e in events if e["type"] == "upload.done"]
    assert len(done) == 1 and [i["id"] for i in done[0]["items"]] == [sha256(d) for d in photos]
    added = {e["image"]["id"] for e in events if e["type"] == "image.added"}
    assert added == {sha256(d) for d in photos}


@pytest.mark.gen_test(timeout=30)
async def test_enospc_placing_the_third_file_lists_and_announces_nothing(
    api: Api, services: Services, settings: Settings
) -> None:
    catalog_of(services).failing = False
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    await assert_all_or_nothing(api, services, settings, mailbox, placed_first=2)


@pytest.mark.gen_test(timeout=30)
async def test_catalog_full_on_the_third_row_lists_and_announces_nothing(
    api: Api, services: Services, settings: Settings
) -> None:
    store_of(services).failing = False
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    await assert_all_or_nothing(api, services, settings, mailbox, placed_first=4)
