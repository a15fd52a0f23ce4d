"""tus 1.0 resumable uploads at /api/v1/uploads/: discovery, versions and the whole journey."""

from __future__ import annotations

import asyncio
import os
import time
from email.utils import parsedate_to_datetime

import pytest

from server.config import Settings
from server.services import Services
from server.services.events import Event
from tests.conftest import Api
from tests.handlers.helpers import API, assert_json_error, blob_path, files_in, ids_in, sha256
from tests.handlers.tus_client import (
    DATA,
    LOCATION,
    UPLOADS,
    b64,
    create,
    event_of,
    head,
    new_upload,
    next_event,
    offset_of,
    patch,
    picture,
    send_all,
    staged,
    still_serving,
    upload_id,
    user_of,
)

# discovery and versions ------------------------------------------------------


@pytest.mark.gen_test
async def test_options_needs_no_token_and_lists_the_protocol(
    anonymous: Api, settings: Settings
) -> None:
    for path in (UPLOADS + "/", UPLOADS, UPLOADS + "/some-upload-id-0123456"):
        response = await anonymous.fetch(path, "OPTIONS")
        assert response.code == 204, path
        assert response.headers["Tus-Resumable"] == "1.0.0"
        assert response.headers["Tus-Version"] == "1.0.0"
        assert response.headers["Tus-Extension"] == (
            "creation,creation-with-upload,termination,checksum,expiration"
        )
        assert response.headers["Tus-Max-Size"] == str(settings.max_upload_size)
        assert response.headers["Tus-Checksum-Algorithm"] == "md5,sha1,sha256"
        assert response.body == b""


@pytest.mark.gen_test
@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", "2.0.0"])
async def test_a_request_without_tus_1_0_0_is_412(api: Api, version: str | None) -> None:
    url = await new_upload(api, picture())
    headers = {} if version is None else {"Tus-Resumable": version}
    calls = [
        (UPLOADS + "/", "POST", b"", {"Upload-Length": "10", **headers}),
        (url, "HEAD", None, headers),
        (url, "DELETE", None, headers),
        (
            url,
            "PATCH",
            b"x",
            {"Content-Type": DATA["Content-Type"], "Upload-Offset": "0", **headers},
        ),
    ]
    for path, method, body, sent in calls:
        response = await api.fetch(path, method, body, sent)
        assert response.code == 412, (method, response.code)
        assert response.headers["Tus-Version"] == "1.0.0"
        assert response.headers["Tus-Resumable"] == "1.0.0"
        if method != "HEAD":
            assert_json_error(response, 412, "tus_version_unsupported")
    assert await offset_of(api, url) == 0
    await still_serving(api)


@pytest.mark.gen_test
async def test_every_call_but_options_needs_a_token(anonymous: Api, api: Api) -> None:
    url = await new_upload(api, picture())
    for path, method, body in [
        (UPLOADS + "/", "POST", b""),
        (url, "HEAD", None),
        (url, "PATCH", b"x"),
        (url, "DELETE", None),
    ]:
        response = await anonymous.fetch(
            path, method, body, {**DATA, "Upload-Length": "5", "Upload-Offset": "0"}
        )
        assert response.code == 401, method
        assert response.headers["Tus-Resumable"] == "1.0.0"
    assert await offset_of(api, url) == 0


# the whole journey -----------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_upload_in_chunks_lands_in_the_library_byte_exact(
    api: Api, settings: Settings
) -> None:
    data = picture(300_000)
    response = await create(
        api, len(data), f"filename {b64('海边.jpg')},filetype {b64('image/jpeg')}"
    )
    assert response.code == 201, response.body
    assert response.headers["Tus-Resumable"] == "1.0.0"
    url = response.headers["Location"]
    assert LOCATION.match(url)
    expires = parsedate_to_datetime(response.headers["Upload-Expires"]).timestamp()
    assert abs(expires - (time.time() + settings.upload_expiry)) < 60

    described = await head(api, url)
    assert described.code == 200
    assert described.headers["Upload-Offset"] == "0"
    assert described.headers["Upload-Length"] == str(len(data))
    assert described.headers["Upload-Metadata"] == (
        f"filename {b64('海边.jpg')},filetype {b64('image/jpeg')}"
    )
    assert described.headers["Cache-Control"] == "no-store"
    assert "Tubei-Image-Id" not in described.headers
    assert "Etag" not in described.headers

    first = await patch(api, url, 0, data[:100_000])
    assert first.code == 204, first.body
    assert first.headers["Upload-Offset"] == "100000"
    assert "Upload-Expires" in first.headers
    assert "Tubei-Image-Id" not in first.headers
    assert await offset_of(api, url) == 100_000
    assert staged(settings, url).read_bytes() == data[:100_000], "durable before answering"

    last = await patch(api, url, 100_000, data[100_000:])
    assert last.code == 204, last.body
    assert last.headers["Upload-Offset"] == str(len(data))
    assert last.headers["Tubei-Image-Id"] == sha256(data)
    assert last.headers["Tubei-Duplicate"] == "false"

    assert await ids_in(api) == [sha256(data)]
    code, item = await api.json(f"{API}/images/{sha256(data)}")
    assert code == 200 and item["filename"] == "海边.jpg" and item["size"] == len(data)
    assert item["exif"] is False, "photo() carries no EXIF tags"
    original = await api.fetch(f"{API}/images/{sha256(data)}/original")
    assert original.body == data
    assert blob_path(settings, sha256(data)).read_bytes() == data
    assert files_in(settings.tmp_dir) == []

    # A client that lost the last answer learns the outcome from HEAD...
    again = await head(api, url)
    assert again.code == 200
    assert again.headers["Upload-Offset"] == again.headers["Upload-Length"] == str(len(data))
    assert again.headers["Tubei-Image-Id"] == sha256(data)
    assert again.headers["Tubei-Duplicate"] == "false"
    # ...and an empty PATCH at the end repeats it, while more data is refused.
    repeat = await patch(api, url, len(data), b"")
    assert repeat.code == 204
    assert repeat.headers["Tubei-Image-Id"] == sha256(data)
    assert_json_error(await patch(api, url, len(data), b"more"), 413, "upload_too_large")
    assert_json_error(await patch(api, url, 0, data[:10]), 409, "offset_mismatch")


@pytest.mark.gen_test(timeout=30)
async def test_the_same_photo_again_is_a_duplicate(api: Api, other_api: Api) -> None:
    data = picture()
    first = await send_all(api, await new_upload(api, data), data)
    assert first.headers["Tubei-Duplicate"] == "false"
    second = await send_all(api, await new_upload(api, data), data)
    assert second.headers["Tubei-Image-Id"] == sha256(data)
    assert second.headers["Tubei-Duplicate"] == "true"
    # Someone else's first copy of it is not a duplicate for them.
    theirs = await send_all(other_api, await new_upload(other_api, data), data)
    assert theirs.headers["Tubei-Duplicate"] == "false"
    assert await ids_in(api) == await ids_in(other_api) == [sha256(data)]


@pytest.mark.gen_test(timeout=30)
async def test_a_file_that_is_not_an_image_is_refused_and_nothing_kept(
    api: Api, services: Services, settings: Settings
) -> None:
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = b"%PDF-1.7 not a photo " + os.urandom(100_000)
    url = await new_upload(api, data, "report.pdf")
    assert (await patch(api, url, 0, data[:50_000])).code == 204
    response = await patch(api, url, 50_000, data[50_000:])
    assert_json_error(response, 415, "unsupported_media_type")
    failed = await event_of(mailbox, "upload.failed", upload_id(url))
    assert failed["error"]["code"] == "unsupported_media_type"
    assert files_in(settings.tmp_dir) == []
    assert files_in(settings.blobs_dir) == []
    assert await ids_in(api) == []
    assert (await head(api, url)).code == 404
    await still_serving(api)


@pytest.mark.gen_test(timeout=30)
async def test_progress_events_end_at_the_total_then_done(api: Api, services: Services) -> None:
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = picture(400_000)
    url = await new_upload(api, data)
    seen: list[Event] = []

    async def watch() -> None:
        while not seen or seen[-1]["type"] != "upload.done":
            seen.append(await next_event(mailbox))

    watching = asyncio.ensure_future(watch())
    for start in range(0, len(data), 100_000):
        assert (await patch(api, url, start, data[start : start + 100_000])).code == 204
        await asyncio.sleep(0.3)  # past the throttle: each request's progress is seen
    await asyncio.wait_for(watching, 10)

    progress = [e for e in seen if e["type"] == "upload.progress"]
    assert seen[: len(progress)] == progress, "every progress event comes before done"
    assert all(e["upload_id"] == upload_id(url) and e["total"] == len(data) for e in progress)
    received = [e["received"] for e in progress]
    assert len(received) >= 4, received
    assert received == sorted(received) and received[0] > 0
    assert received[-1] == len(data)
    done = seen[-1]
    assert done["upload_id"] == upload_id(url)
    assert done["duplicate"] is False
    assert done["image"]["id"] == sha256(data)
    assert done["image"]["filename"] == "photo.jpg"
    added = await next_event(mailbox)
    assert added["type"] == "image.added" and added["image"]["id"] == sha256(data)
