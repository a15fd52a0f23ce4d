"""A full disk during uploads: 507, nothing half-kept, downloads still served.

Two ways to fill a disk, and each test's name says which it uses:

- `test_real_disk_*` put the data folder on a real 4 MiB tmpfs and fill it to the last
  byte (skipped, with the reason, where this machine does not allow mounting);
- `test_injected_*` always run: a store whose staged files get ENOSPC from `write`
  once a byte budget is spent (our storage seam), or a catalog whose transaction
  meets a real SQLITE_FULL ("database or disk is full") from SQLite itself.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
import tornado.ioloop

from server.catalog import BlobRecord, ImageRecord, UploadRecord
from server.catalog.sqlite import SQLiteCatalog
from server.config import Settings
from server.services import Services, build_services
from server.services.events import Mailbox
from server.storage.local import LocalBlobStore, LocalBlobWriter
from tests.conftest import CLOSE_TIMEOUT, Api, close_within, multipart
from tests.handlers.helpers import (
    API,
    assert_json_error,
    blob_path,
    files_in,
    ids_in,
    photo,
    sha256,
)
from tests.handlers.tus_client import (
    DATA,
    UPLOADS,
    new_upload,
    next_event,
    offset_of,
    patch,
    picture,
    send_all,
    staged,
    user_of,
)
from tests.small_disk import fill, small_disk

__all__ = ["small_disk"]  # a fixture, used by name

IMAGES = f"{API}/images"


async def post_photos(
    api: Api, files: list[tuple[str, str, bytes]], upload_id: str | None = None
) -> tuple[int, Any]:
    body, content_type = multipart(files)
    headers = {"Content-Type": content_type}
    if upload_id is not None:
        headers["X-Upload-Id"] = upload_id
    response = await api.fetch(IMAGES, "POST", body, headers)
    return response.code, json.loads(response.body)


async def still_downloads(api: Api, data: bytes) -> None:
    """The photo is listed, described and served byte-exact (a full disk changes nothing)."""
    assert sha256(data) in await ids_in(api)
    code, item = await api.json(f"{IMAGES}/{sha256(data)}")
    assert code == 200 and "damaged" not in item, item
    response = await api.fetch(f"{IMAGES}/{sha256(data)}/original")
    assert response.code == 200, response.body
    assert response.body == data


def assert_full(code: int, body: Any) -> None:
    assert code == 507, body
    assert body["error"]["code"] == "insufficient_storage", body
    assert "disk is full" in body["error"]["message"], body


def blobs_in(settings: Settings) -> list[str]:
    return [path.name for path in files_in(settings.blobs_dir)]


async def failed_event(mailbox: Mailbox, upload_id: str) -> dict[str, Any]:
    while True:
        event = await next_event(mailbox)
        if event["type"] == "upload.failed" and event["upload_id"] == upload_id:
            return event


# injected: a store that runs out of room, a catalog that cannot grow -------------


class Disk:
    """The free bytes of a pretend disk; None for plenty."""

    free: int | None = None


class BudgetFile:
    """A staged file that takes bytes while the disk has room, then fails as a full disk does."""

    def __init__(self, file: BinaryIO, disk: Disk) -> None:
        self._file = file
        self._disk = disk

    def write(self, data: bytes) -> int:
        free = self._disk.free
        if free is None:
            return self._file.write(data)
        room = min(free, len(data))
        self._file.write(data[:room])  # what fitted reached the file
        self._disk.free = free - room
        if room < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return room


class FullWriter(LocalBlobWriter):
    def _open(self) -> BinaryIO:
        store = self._store
        assert isinstance(store, FullStore)
        return cast(BinaryIO, BudgetFile(super()._open(), store.disk))


class FullStore(LocalBlobStore):
    writer_type = FullWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disk = Disk()


class FullCatalog(SQLiteCatalog):
    """The writes named in `full` meet SQLite's own SQLITE_FULL.

    The transaction first does its real work, then asks for more pages than the
    catalog may have (`max_page_count` set to what it has): SQLite fails it with
    "database or disk is full" and rolls all of it back, as a full disk would.
    """

    full: frozenset[str] = frozenset()

    def _connect(self) -> sqlite3.Connection:
        db = super()._connect()
        db.execute("CREATE TABLE IF NOT EXISTS ballast (b BLOB)")
        return db

    def _fill_up(self, write: str) -> None:
        if write in self.full:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {pages}")
            try:
                self._db.execute("INSERT INTO ballast VALUES (zeroblob(1000000))")
            finally:
                self._db.execute("PRAGMA max_page_count = 1073741823")

    def _add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        added = super()._add_image(user_id, blob, filename, now)
        self._fill_up("add_image")
        return added

    def _add_upload(self, upload: UploadRecord) -> None:
        super()._add_upload(upload)
        self._fill_up("add_upload")

    def _complete_upload(self, *args: Any) -> UploadRecord | None:
        done = super()._complete_upload(*args)
        self._fill_up("complete_upload")
        return done


class TestInjected:
    @pytest.fixture
    def services(
        self,
        settings: Settings,
        io_loop: tornado.ioloop.IOLoop,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Iterator[Services]:
        # build_services makes its store and catalog by these names: ours stand in.
        monkeypatch.setattr("server.services.LocalBlobStore", FullStore)
        monkeypatch.setattr("server.services.SQLiteCatalog", FullCatalog)
        built = build_services(settings)
        yield built
        close_within(io_loop, built, CLOSE_TIMEOUT)

    @staticmethod
    def disk(services: Services) -> Disk:
        assert isinstance(services.store, FullStore)
        return services.store.disk

    @staticmethod
    def catalog(services: Services) -> FullCatalog:
        assert isinstance(services.catalog, FullCatalog)
        return services.catalog

    @pytest.mark.gen_test(timeout=20)
    async def test_injected_enospc_mid_multipart_is_507_and_keeps_nothing(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        kept = photo()
        await post_photos(api, [("file", "kept.jpg", kept)])
        mailbox = services.events.subscribe((await user_of(services, api)).id)
        big = picture(400_000)

        self.disk(services).free = 100_000
        code, body = await post_photos(api, [("file", "big.jpg", big)], upload_id="full-1")
        assert_full(code, body)
        event = await failed_event(mailbox, "full-1")
        assert event["error"]["code"] == "insufficient_storage"
        assert files_in(settings.tmp_dir) == [], "the staged file is removed"
        assert blobs_in(settings) == [sha256(kept)]
        assert await ids_in(api) == [sha256(kept)]
        await still_downloads(api, kept)

        self.disk(services).free = None  # space is back
        code, body = await post_photos(api, [("file", "big.jpg", big)])
        assert code == 200, body
        await still_downloads(api, big)

    @pytest.mark.gen_test(timeout=20)
    async def test_injected_enospc_in_the_second_file_keeps_neither(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        first, second = picture(100_000), picture(300_000)
        self.disk(services).free = len(first) + 50_000
        code, body = await post_photos(api, [("a", "1.jpg", first), ("b", "2.jpg", second)])
        assert_full(code, body)
        assert files_in(settings.tmp_dir) == []
        assert blobs_in(settings) == []
        assert await ids_in(api) == [], "nothing of the request is listed"

    @pytest.mark.gen_test(timeout=20)
    async def test_injected_enospc_mid_tus_patch_keeps_the_durable_offset(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        data = picture(300_000)
        url = await new_upload(api, data, "resumed.jpg")
        assert (await patch(api, url, 0, data[:100_000])).code == 204

        self.disk(services).free = 30_000
        refused = await patch(api, url, 100_000, data[100_000:200_000])
        assert_json_error(refused, 507, "insufficient_storage")
        assert refused.headers["Upload-Offset"] == "100000"
        assert "resume from there" in json.loads(refused.body)["error"]["message"]
        # The bytes of the refused request are cut (which also frees their room).
        assert staged(settings, url).read_bytes() == data[:100_000]
        assert await offset_of(api, url) == 100_000
        assert await ids_in(api) == []

        self.disk(services).free = None
        last = await send_all(api, url, data)
        assert last.headers["Tubei-Image-Id"] == sha256(data)
        await still_downloads(api, data)
        assert files_in(settings.tmp_dir) == []

    @pytest.mark.gen_test(timeout=20)
    async def test_injected_enospc_in_a_tus_creation_with_data_leaves_no_upload(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        data = picture(200_000)
        self.disk(services).free = 10_000
        headers = {**DATA, "Upload-Length": str(len(data))}
        response = await api.fetch(UPLOADS + "/", "POST", data, headers)
        assert_json_error(response, 507, "insufficient_storage")
        assert "Location" not in response.headers
        for _ in range(100):  # the failed creation is dropped in the background
            if not await services.catalog.upload_ids() and not files_in(settings.tmp_dir):
                break
            await asyncio.sleep(0.02)
        assert await services.catalog.upload_ids() == set()
        assert files_in(settings.tmp_dir) == []

    @pytest.mark.gen_test(timeout=20)
    async def test_injected_catalog_full_is_507_and_gc_takes_the_placed_blob(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        kept, lost = photo(), photo()
        await post_photos(api, [("file", "kept.jpg", kept)])
        self.catalog(services).full = frozenset({"add_image", "add_upload"})
        code, body = await post_photos(api, [("file", "lost.jpg", lost)])
        assert_full(code, body)
        # The blob was placed before the catalog failed: an orphan, never listed.
        assert blob_path(settings, sha256(lost)).read_bytes() == lost
        assert await ids_in(api) == [sha256(kept)]
        assert await services.catalog.get_blob(sha256(lost)) is None
        await still_downloads(api, kept)

        tus = await api.fetch(UPLOADS + "/", "POST", b"", {**DATA, "Upload-Length": "1000"})
        assert_json_error(tus, 507, "insufficient_storage")

        self.catalog(services).full = frozenset()
        assert (await services.library.collect_garbage()).orphan_files == 0  # in its grace
        services.library.collector.grace = 0
        report = await services.library.collect_garbage()
        assert report.orphan_files == 1
        assert blobs_in(settings) == [sha256(kept)]
        code, body = await post_photos(api, [("file", "lost.jpg", lost)])
        assert code == 200, body
        await still_downloads(api, lost)

    @pytest.mark.gen_test(timeout=20)
    async def test_injected_catalog_full_at_the_end_of_a_tus_upload_is_507(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        data = picture(200_000)
        url = await new_upload(api, data)
        assert (await patch(api, url, 0, data[:100_000])).code == 204
        self.catalog(services).full = frozenset({"add_image"})
        refused = await patch(api, url, 100_000, data[100_000:])
        assert_json_error(refused, 507, "insufficient_storage")
        assert await ids_in(api) == []
        self.catalog(services).full = frozenset()
        # Its file went into the store before the catalog failed, as a second name of the
        # staged file: the upload went back to its durable offset on a copy of its own,
        # and the placed file (an orphan) kept every byte.
        assert blob_path(settings, sha256(data)).read_bytes() == data
        assert staged(settings, url).read_bytes() == data[:100_000]
        services.library.collector.grace = 0
        assert (await services.library.collect_garbage()).orphan_files == 1
        resumed = await patch(api, url, 100_000, data[100_000:])
        assert resumed.code == 204, resumed.body
        assert resumed.headers["Tubei-Image-Id"] == sha256(data)
        await still_downloads(api, data)

    @pytest.mark.gen_test(timeout=20)
    async def test_injected_catalog_full_after_the_photo_is_in_still_says_done(
        self, api: Api, services: Services
    ) -> None:
        data = picture(200_000)
        url = await new_upload(api, data)
        self.catalog(services).full = frozenset({"complete_upload"})
        last = await patch(api, url, 0, data)
        assert last.code == 204, last.body
        assert last.headers["Tubei-Image-Id"] == sha256(data)
        assert last.headers["Upload-Offset"] == str(len(data))
        await still_downloads(api, data)


# a real small disk -----------------------------------------------------------------


class TestRealDisk:
    @pytest.fixture
    def settings(self, small_disk: Path) -> Settings:
        return Settings(data=small_disk / "data", gc_interval=3600)

    @staticmethod
    async def ready(api: Api, services: Services, data: bytes) -> None:
        """One photo in, thumbnails made, the token's last-seen noted: then the disk fills."""
        code, body = await post_photos(api, [("file", "kept.jpg", data)])
        assert code == 200, body
        await services.library.thumbnails.drain()
        assert (await api.fetch(f"{IMAGES}/{sha256(data)}/thumbnail")).code == 200

    @pytest.mark.gen_test(timeout=20)
    async def test_real_disk_full_multipart_is_507_and_downloads_keep_working(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        kept, big = photo(), picture(600_000)
        await self.ready(api, services, kept)
        filler = fill(settings.data)

        code, body = await post_photos(api, [("file", "big.jpg", big)])
        assert_full(code, body)
        assert files_in(settings.tmp_dir) == []
        assert blobs_in(settings) == [sha256(kept)]
        await still_downloads(api, kept)
        thumbnail = await api.fetch(f"{IMAGES}/{sha256(kept)}/thumbnail")
        assert thumbnail.code == 200
        # A preview is made when first opened: with no room for it, a clean 507.
        preview = await api.fetch(f"{IMAGES}/{sha256(kept)}/thumbnail?size=preview")
        assert_json_error(preview, 507, "insufficient_storage")

        filler.unlink()
        preview = await api.fetch(f"{IMAGES}/{sha256(kept)}/thumbnail?size=preview")
        assert preview.code == 200
        code, body = await post_photos(api, [("file", "big.jpg", big)])
        assert code == 200, body
        await still_downloads(api, big)

    @pytest.mark.gen_test(timeout=20)
    async def test_real_disk_full_mid_tus_patch_resumes_when_space_returns(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        kept, data = photo(), picture(600_000)
        await self.ready(api, services, kept)
        url = await new_upload(api, data, "resumed.jpg")
        assert (await patch(api, url, 0, data[:200_000])).code == 204
        filler = fill(settings.data)

        refused = await patch(api, url, 200_000, data[200_000:400_000])
        assert_json_error(refused, 507, "insufficient_storage")
        assert refused.headers["Upload-Offset"] == "200000"
        assert staged(settings, url).read_bytes() == data[:200_000]
        assert await offset_of(api, url) == 200_000
        await still_downloads(api, kept)

        filler.unlink()
        last = await send_all(api, url, data, chunk=200_000)
        assert last.headers["Tubei-Image-Id"] == sha256(data)
        await still_downloads(api, data)
        assert files_in(settings.tmp_dir) == []

    @pytest.mark.gen_test(timeout=20)
    async def test_real_disk_full_in_the_catalog_is_507_and_gc_takes_the_blob(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        kept, lost = photo(), picture(300_000)
        await self.ready(api, services, kept)
        # Room for the photo's bytes and not a page more: the catalog cannot grow its WAL.
        filler = fill(settings.data, leave=len(lost))

        code, body = await post_photos(api, [("file", "lost.jpg", lost)])
        assert_full(code, body)
        assert blob_path(settings, sha256(lost)).read_bytes() == lost, "placed, then orphaned"
        await still_downloads(api, kept)
        assert await ids_in(api) == [sha256(kept)]

        filler.unlink()
        assert (await services.library.collect_garbage()).orphan_files == 0  # in its grace
        services.library.collector.grace = 0
        assert (await services.library.collect_garbage()).orphan_files == 1
        assert blobs_in(settings) == [sha256(kept)]
