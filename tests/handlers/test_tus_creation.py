"""tus creation: refusals, metadata, and creation with upload."""

from __future__ import annotations

import asyncio

import pytest

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.helpers import assert_json_error, files_in, ids_in, sha256
from tests.handlers.tus_client import (
    DATA,
    TUS,
    UPLOADS,
    RawRequest,
    b64,
    checksum,
    create,
    head,
    next_event,
    offset_of,
    picture,
    send_all,
    still_serving,
    user_of,
)

# creation --------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 400, "invalid_header"),
        ({"Upload-Length": "abc"}, 400, "invalid_header"),
        ({"Upload-Length": "-1"}, 400, "invalid_header"),
        ({"Upload-Length": "1.5"}, 400, "invalid_header"),
        ({"Upload-Length": "1" * 30}, 400, "invalid_header"),
        ({"Upload-Length": "0"}, 400, "empty_file"),
        ({"Upload-Defer-Length": "1"}, 400, "defer_length_unsupported"),
        ({"Upload-Length": "100", "Content-Type": "image/jpeg"}, 415, "invalid_content_type"),
    ],
)
async def test_creation_refusals(
    api: Api, settings: Settings, headers: dict[str, str], status: int, code: str
) -> None:
    body = b"x" if "Content-Type" in headers else b""
    response = await api.fetch(UPLOADS + "/", "POST", body, {**TUS, **headers})
    assert_json_error(response, status, code)
    assert "Location" not in response.headers
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert files_in(settings.tus_dir) == []
    await still_serving(api)


@pytest.mark.gen_test
async def test_creation_larger_than_the_limit_is_413(api: Api, settings: Settings) -> None:
    response = await create(api, settings.max_upload_size + 1)
    assert_json_error(response, 413, "upload_too_large")
    assert (await create(api, settings.max_upload_size)).code == 201


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("header", "echoed"),
    [
        ("filename cGhvdG8uanBn", "filename cGhvdG8uanBn"),
        ("filename cGhvdG8uanBn,is_confidential", "filename cGhvdG8uanBn,is_confidential"),
        ("a YQ==, b Yg==,c ", "a YQ==,b Yg==,c"),
        ("", None),
    ],
)
async def test_metadata_is_echoed(api: Api, header: str, echoed: str | None) -> None:
    response = await create(api, 10, header)
    assert response.code == 201, response.body
    described = await head(api, response.headers["Location"])
    assert described.headers.get("Upload-Metadata") == echoed


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "header",
    [
        "filename not*base64",
        "filename YQ",  # no padding
        "a b c",
        "a  YQ==",
        ",",
        "a YQ==,",
        "a YQ==,a Yg==",
        "caf\u00e9 YQ==",
        "sha256 " + b64("not a hash"),
        "sha256 " + b64("ab" * 31),
        "x" * (17 * 1024),
    ],
)
async def test_malformed_metadata_is_400(api: Api, settings: Settings, header: str) -> None:
    response = await api.fetch(
        UPLOADS + "/", "POST", b"", {**TUS, "Upload-Length": "10", "Upload-Metadata": header}
    )
    assert_json_error(response, 400, "invalid_metadata")
    assert files_in(settings.tus_dir) == []


@pytest.mark.gen_test(timeout=30)
async def test_creation_with_upload_takes_the_first_chunk(api: Api, settings: Settings) -> None:
    data = picture()
    response = await api.fetch(
        UPLOADS + "/",
        "POST",
        data[:70_000],
        {**DATA, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {b64('a.jpg')}"},
    )
    assert response.code == 201, response.body
    url = response.headers["Location"]
    assert response.headers["Upload-Offset"] == "70000"
    assert "Upload-Expires" in response.headers
    assert await offset_of(api, url) == 70_000
    assert (await send_all(api, url, data)).headers["Tubei-Image-Id"] == sha256(data)

    whole = picture()
    response = await api.fetch(
        UPLOADS + "/",
        "POST",
        whole,
        {**DATA, "Upload-Length": str(len(whole)), "Upload-Checksum": checksum("sha1", whole)},
    )
    assert response.code == 201, response.body
    assert response.headers["Upload-Offset"] == str(len(whole))
    assert response.headers["Tubei-Image-Id"] == sha256(whole)
    assert response.headers["Tubei-Duplicate"] == "false"
    assert sorted(await ids_in(api)) == sorted([sha256(data), sha256(whole)])
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test(timeout=30)
async def test_refused_creation_with_upload_leaves_no_upload(
    api: Api, services: Services, settings: Settings
) -> None:
    data = picture()
    cases = [
        ({"Upload-Checksum": checksum("md5", b"other bytes")}, data[:1000], 460),
        ({"Upload-Length": "100"}, data[:1000], 413),
        (
            {"Upload-Length": str(len(data)), "Upload-Metadata": "sha256 " + b64("0" * 64)},
            data,
            460,
        ),
        ({"Upload-Length": "1000"}, b"not an image" + bytes(988), 415),
    ]
    for extra, body, status in cases:
        headers = {**DATA, "Upload-Length": str(len(data)), **extra}
        response = await api.fetch(UPLOADS + "/", "POST", body, headers)
        assert response.code == status, (extra, response.body)
        assert "Location" not in response.headers
    for _ in range(100):
        # The row goes before the upload's lock file (which is removed last, still held).
        if not await services.catalog.upload_ids() and not files_in(settings.tmp_dir):
            break
        await asyncio.sleep(0.02)
    assert await services.catalog.upload_ids() == set()
    assert files_in(settings.tmp_dir) == []
    assert files_in(settings.blobs_dir) == []


@pytest.mark.gen_test(timeout=30)
async def test_an_interrupted_creation_with_upload_leaves_nothing(
    api: Api, services: Services, settings: Settings, base_url: str
) -> None:
    # Its client never received the Location: nobody could ever resume it.
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = picture()
    held = await RawRequest.start(
        base_url,
        "POST",
        UPLOADS + "/",
        {
            "Authorization": f"Bearer {api.token}",
            **DATA,
            "Upload-Length": str(len(data)),
            "Content-Length": str(len(data)),
        },
        data[:60_000],
    )
    while (await next_event(mailbox))["type"] != "upload.progress":
        pass
    assert len(await services.catalog.upload_ids()) == 1
    held.close()
    for _ in range(250):
        if not await services.catalog.upload_ids() and not files_in(settings.tmp_dir):
            break
        await asyncio.sleep(0.02)
    assert await services.catalog.upload_ids() == set()
    assert files_in(settings.tmp_dir) == []
