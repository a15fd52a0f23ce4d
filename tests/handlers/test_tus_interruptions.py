"""tus uploads have one writer at a time, and survive interruptions."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.helpers import API, assert_json_error, files_in, sha256
from tests.handlers.tus_client import (
    DATA,
    TUS,
    RawRequest,
    checksum,
    event_of,
    new_upload,
    offset_of,
    patch,
    picture,
    raw_patch,
    send_all,
    staged,
    upload_id,
    user_of,
)

# one writer at a time, and interruptions -------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_a_second_writer_is_423_while_the_first_streams(
    api: Api, services: Services, settings: Settings, base_url: str
) -> None:
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = picture(200_000)
    url = await new_upload(api, data)
    held = await raw_patch(api, base_url, url, 0, len(data))
    try:
        await held.send(data[:50_000])
        await event_of(mailbox, "upload.progress", upload_id(url))  # it is writing

        second = await patch(api, url, 0, data[:10])
        assert_json_error(second, 423, "upload_locked")
        override = await patch(api, url, 0, data[:10], override=True)
        assert_json_error(override, 423, "upload_locked")
        terminate = await api.fetch(url, "DELETE", None, TUS)
        assert_json_error(terminate, 423, "upload_locked")
        assert await offset_of(api, url) == 0, "HEAD tells the durable offset"

        await held.send(data[50_000:])
        status, headers, _ = await held.response()
    finally:
        held.close()
    assert status == 204
    assert headers["tubei-image-id"] == sha256(data)
    assert (await api.fetch(f"{API}/images/{sha256(data)}/original")).body == data


@pytest.mark.gen_test(timeout=30)
async def test_an_interrupted_patch_keeps_what_arrived_and_resumes(
    api: Api, services: Services, settings: Settings, base_url: str
) -> None:
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = picture(300_000)
    url = await new_upload(api, data)
    assert (await patch(api, url, 0, data[:10_000])).code == 204
    await event_of(mailbox, "upload.progress", upload_id(url))
    await asyncio.sleep(0.3)  # past the progress throttle
    held = await raw_patch(api, base_url, url, 10_000, len(data) - 10_000)
    await held.send(data[10_000:130_000])
    await event_of(mailbox, "upload.progress", upload_id(url))  # the server is writing it
    await asyncio.sleep(0.1)  # let the rest of what was sent arrive
    held.close()

    offset = await wait_for_offset_past(api, url, 10_000)
    assert 10_000 < offset <= 130_000
    assert staged(settings, url).read_bytes() == data[:offset], "fsynced, then recorded"
    last = await send_all(api, url, data)
    assert last.headers["Tubei-Image-Id"] == sha256(data)
    assert (await api.fetch(f"{API}/images/{sha256(data)}/original")).body == data
    assert files_in(settings.tmp_dir) == []


async def wait_for_offset_past(api: Api, url: str, start: int, seconds: float = 5.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        offset = await offset_of(api, url)
        if offset > start:
            return offset
        await asyncio.sleep(0.02)
    raise AssertionError(f"the offset never moved past {start}")


@pytest.mark.gen_test(timeout=30)
async def test_an_interrupted_patch_with_a_checksum_is_discarded(
    api: Api, services: Services, settings: Settings, base_url: str
) -> None:
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = picture(200_000)
    url = await new_upload(api, data)
    held = await RawRequest.start(
        base_url,
        "PATCH",
        url,
        {
            "Authorization": f"Bearer {api.token}",
            **DATA,
            "Upload-Offset": "0",
            "Content-Length": str(len(data)),
            "Upload-Checksum": checksum("sha256", data),
        },
        data[:100_000],
    )
    await event_of(mailbox, "upload.progress", upload_id(url))
    held.close()
    # Once the interrupted request has let go, an empty PATCH at 0 goes through: the
    # bytes were dropped (had they been kept, the answer would be 409).
    deadline = time.monotonic() + 5
    while True:
        response = await patch(api, url, 0, b"")
        if response.code != 423 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert response.code == 204, response.body
    assert response.headers["Upload-Offset"] == "0"
    assert staged(settings, url).stat().st_size == 0
