"""A full disk during uploads, injected: 507, nothing half-kept, downloads still served.

These always run: a store whose staged files get ENOSPC from `write` once a byte
budget is spent (our storage seam), or a catalog whose transaction meets a real
SQLITE_FULL ("database or disk is full") from SQLite itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import tornado.ioloop

from server.config import Settings
from server.services import Services, build_services
from tests.conftest import CLOSE_TIMEOUT, Api, close_within
from tests.handlers.full_disk import (
    Disk,
    FullCatalog,
    FullStore,
    assert_full,
    blobs_in,
    failed_event,
    post_photos,
    still_downloads,
)
from tests.handlers.helpers import assert_json_error, blob_path, files_in, ids_in, photo, sha256
from tests.handlers.tus_client import (
    DATA,
    UPLOADS,
    new_upload,
    offset_of,
    patch,
    picture,
    send_all,
    staged,
    user_of,
)


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
