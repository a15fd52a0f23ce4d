"""tus uploads are their owner's; termination and expiry."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.helpers import assert_json_error, files_in, ids_in, sha256
from tests.handlers.tus_client import (
    DATA,
    TUS,
    UPLOADS,
    head,
    new_upload,
    offset_of,
    patch,
    picture,
    send_all,
    staged,
)

# ownership, termination, expiry ----------------------------------------------


@pytest.mark.gen_test
async def test_unknown_and_other_peoples_uploads_are_404(
    api: Api, other_api: Api, settings: Settings
) -> None:
    data = picture()
    url = await new_upload(api, data)
    assert (await patch(api, url, 0, data[:1000])).code == 204
    for path in (
        url,
        f"{UPLOADS}/AAAAAAAAAAAAAAAAAAAAAA",
        f"{UPLOADS}/short",
        f"{UPLOADS}/..%2F..%2Fcatalog",
    ):
        for who in (other_api, api) if path != url else (other_api,):
            for response in (
                await head(who, path),
                await patch(who, path, 1000, b"x"),
                await patch(who, path, 1000, b"x", override=True),
                await who.fetch(path, "DELETE", None, TUS),
            ):
                assert response.code == 404, (path, response.code)
                if response.body:
                    assert_json_error(response, 404, "upload_not_found")
    assert await offset_of(api, url) == 1000
    assert staged(settings, url).read_bytes() == data[:1000]


@pytest.mark.gen_test
async def test_delete_terminates_the_upload(api: Api, settings: Settings) -> None:
    data = picture()
    url = await new_upload(api, data)
    assert (await patch(api, url, 0, data[:5000])).code == 204
    assert staged(settings, url).exists()
    response = await api.fetch(url, "DELETE", None, TUS)
    assert response.code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert not staged(settings, url).exists()
    assert (await head(api, url)).code == 404
    assert_json_error(await patch(api, url, 5000, data[5000:6000]), 404, "upload_not_found")
    assert_json_error(await api.fetch(url, "DELETE", None, TUS), 404, "upload_not_found")
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test(timeout=30)
async def test_deleting_a_finished_upload_keeps_the_photo(api: Api) -> None:
    data = picture()
    url = await new_upload(api, data)
    await send_all(api, url, data)
    assert (await api.fetch(url, "DELETE", None, TUS)).code == 204
    assert (await head(api, url)).code == 404
    assert await ids_in(api) == [sha256(data)]


class TestExpiry:
    """A server whose unfinished uploads expire a second after their last PATCH."""

    EXPIRY = 1.0

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data=tmp_path / "data", upload_expiry=self.EXPIRY)

    @pytest.mark.gen_test(timeout=30)
    async def test_expired_is_410_then_collected(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        data = picture()
        url = await new_upload(api, data)
        started = time.monotonic()
        response = await patch(api, url, 0, data[:1000])
        assert response.code == 204
        expires = parsedate_to_datetime(response.headers["Upload-Expires"]).timestamp()
        assert time.time() - 2 < expires <= time.time() + self.EXPIRY + 1

        await asyncio.sleep(0.6)
        # A PATCH pushes the expiry back: 1.2 s after creation, 0.6 s after it, still alive.
        assert (await patch(api, url, 1000, data[1000:2000])).code == 204
        await asyncio.sleep(0.6)
        assert time.monotonic() - started > self.EXPIRY
        assert await offset_of(api, url) == 2000

        await asyncio.sleep(0.8)
        assert_json_error(
            await api.fetch(url, "PATCH", data[2000:3000], {**DATA, "Upload-Offset": "2000"}),
            410,
            "upload_expired",
        )
        assert (await head(api, url)).code == 410
        assert staged(settings, url).exists(), "kept until collected"

        fresh = await new_upload(api, data)
        report = await services.uploads.expire()
        assert (report.expired, report.orphan_files) == (1, 0)
        assert not staged(settings, url).exists()
        assert (await head(api, url)).code == 404
        assert await offset_of(api, fresh) == 0

    @pytest.mark.gen_test(timeout=30)
    async def test_gc_removes_files_no_upload_owns(
        self, api: Api, services: Services, settings: Settings
    ) -> None:
        data = picture()
        url = await new_upload(api, data)
        assert (await patch(api, url, 0, data[:1000])).code == 204
        stray = settings.tus_dir / "nobody-owns-this-file"
        stray.write_bytes(b"left by a crash")
        report = await services.uploads.expire()
        assert (report.expired, report.orphan_files) == (0, 1)
        assert not stray.exists()
        assert staged(settings, url).read_bytes() == data[:1000]
