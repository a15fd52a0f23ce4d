"""tus PATCH rules: content type, offsets, and data past the length."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.config import Settings
from tests.conftest import Api
from tests.handlers.helpers import assert_json_error, sha256
from tests.handlers.tus_client import (
    DATA,
    TUS,
    new_upload,
    offset_of,
    patch,
    picture,
    staged,
    still_serving,
)

# PATCH rules -----------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "image/jpeg"])
async def test_patch_needs_the_offset_stream_content_type(
    api: Api, content_type: str | None
) -> None:
    url = await new_upload(api, picture())
    headers = {**TUS, "Upload-Offset": "0"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await api.fetch(url, "PATCH", b"abc", headers)
    assert_json_error(response, 415, "invalid_content_type")
    assert await offset_of(api, url) == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", [None, "", "x", "-1", "1e3"])
async def test_patch_needs_a_valid_upload_offset(api: Api, offset: str | None) -> None:
    url = await new_upload(api, picture())
    headers = dict(DATA)
    if offset is not None:
        headers["Upload-Offset"] = offset
    response = await api.fetch(url, "PATCH", b"abc", headers)
    assert_json_error(response, 400, "invalid_header")


@pytest.mark.gen_test
async def test_offset_mismatch_is_409_with_the_real_offset(api: Api, settings: Settings) -> None:
    data = picture()
    url = await new_upload(api, data)
    assert (await patch(api, url, 0, data[:1000])).code == 204
    for wrong in (0, 999, 1001, len(data)):
        response = await patch(api, url, wrong, data[wrong : wrong + 10])
        assert_json_error(response, 409, "offset_mismatch")
        assert response.headers["Upload-Offset"] == "1000"
    assert await offset_of(api, url) == 1000
    assert staged(settings, url).read_bytes() == data[:1000]


@pytest.mark.gen_test
async def test_data_past_the_length_is_413_from_the_headers(api: Api, settings: Settings) -> None:
    data = picture()
    url = await new_upload(api, data)
    assert (await patch(api, url, 0, data[:1000])).code == 204
    response = await patch(api, url, 1000, data[1000:] + b"!")
    assert_json_error(response, 413, "upload_too_large")
    assert await offset_of(api, url) == 1000
    assert staged(settings, url).read_bytes() == data[:1000]
    await still_serving(api)


@pytest.mark.gen_test
async def test_chunked_data_past_the_length_is_413_and_discarded(
    api: Api, settings: Settings
) -> None:
    data = picture(200_000)
    url = await new_upload(api, data[:100_000])
    body = data[:150_000]

    async def produce(write: Callable[[bytes], Any]) -> None:
        for start in range(0, len(body), 16 * 1024):
            await write(body[start : start + 16 * 1024])

    response = await api.client.fetch(
        api.base_url + url,
        method="PATCH",
        headers=api.headers({**DATA, "Upload-Offset": "0"}),
        body_producer=produce,
        raise_error=False,
    )
    assert_json_error(response, 413, "upload_too_large")
    assert await offset_of(api, url) == 0
    assert staged(settings, url).stat().st_size == 0
    await still_serving(api)


@pytest.mark.gen_test
async def test_chunked_data_within_the_length_is_taken(api: Api) -> None:
    data = picture()
    url = await new_upload(api, data)

    async def produce(write: Callable[[bytes], Any]) -> None:
        for start in range(0, len(data), 10_000):
            await write(data[start : start + 10_000])

    response = await api.client.fetch(
        api.base_url + url,
        method="PATCH",
        headers=api.headers({**DATA, "Upload-Offset": "0"}),
        body_producer=produce,
        raise_error=False,
    )
    assert response.code == 204, response.body
    assert response.headers["Tubei-Image-Id"] == sha256(data)
