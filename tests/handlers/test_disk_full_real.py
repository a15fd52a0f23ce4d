"""A full disk during uploads, for real: the data folder on a 4 MiB tmpfs filled to
the last byte (skipped, with the reason, where this machine does not allow mounting).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.full_disk import IMAGES, assert_full, blobs_in, post_photos, still_downloads
from tests.handlers.helpers import assert_json_error, blob_path, files_in, ids_in, photo, sha256
from tests.handlers.tus_client import new_upload, offset_of, patch, picture, send_all, staged
from tests.small_disk import fill, small_disk

__all__ = ["small_disk"]  # a fixture, used by name


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
