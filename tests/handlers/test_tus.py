"""tus 1.0 resumable uploads at /api/v1/uploads/, over real sockets, on real files."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.iostream
from tornado.tcpclient import TCPClient
from tornado.testing import bind_unused_port

from server.app import make_app
from server.catalog import User
from server.config import Settings
from server.services import Services, build_services
from server.services.events import Event, Mailbox
from server.views import event_json
from tests.conftest import Api
from tests.handlers.helpers import (
    API,
    assert_json_error,
    blob_path,
    files_in,
    ids_in,
    photo,
    port_of,
    sha256,
)

UPLOADS = f"{API}/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
DATA = {**TUS, "Content-Type": "application/offset+octet-stream"}
LOCATION = re.compile(r"\A/api/v1/uploads/[A-Za-z0-9_-]{16,64}\Z")

Response = tornado.httpclient.HTTPResponse


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {b64(hashlib.new(algorithm, data).digest())}"


def picture(extra: int = 150_000) -> bytes:
    """A real JPEG with noise after its end (a motion photo's shape): chunks worth splitting."""
    return photo() + os.urandom(extra)


async def create(
    api: Api, length: int | str, metadata: str | None = None, **headers: str
) -> Response:
    sent = {**TUS, "Upload-Length": str(length), **headers}
    if metadata is not None:
        sent["Upload-Metadata"] = metadata
    return await api.fetch(UPLOADS + "/", "POST", b"", sent)


async def new_upload(api: Api, data: bytes, filename: str = "photo.jpg", **meta: str) -> str:
    metadata = ",".join(f"{k} {b64(v)}" for k, v in {"filename": filename, **meta}.items())
    response = await create(api, len(data), metadata)
    assert response.code == 201, response.body
    location = response.headers["Location"]
    assert LOCATION.match(location), location
    return location


async def patch(
    api: Api, url: str, offset: int, chunk: bytes, *, override: bool = False, **headers: str
) -> Response:
    sent = {**DATA, "Upload-Offset": str(offset), **headers}
    if override:
        sent["X-HTTP-Method-Override"] = "PATCH"
        return await api.fetch(url, "POST", chunk, sent)
    return await api.fetch(url, "PATCH", chunk, sent)


async def head(api: Api, url: str) -> Response:
    return await api.fetch(url, "HEAD", None, TUS)


async def offset_of(api: Api, url: str) -> int:
    response = await head(api, url)
    assert response.code == 200, response.code
    return int(response.headers["Upload-Offset"])


async def send_all(api: Api, url: str, data: bytes, chunk: int = 60_000) -> Response:
    """PATCH the rest of `data` from the upload's offset; the last response."""
    offset = await offset_of(api, url)
    response = None
    while offset < len(data):
        response = await patch(api, url, offset, data[offset : offset + chunk])
        assert response.code == 204, response.body
        offset = int(response.headers["Upload-Offset"])
    assert response is not None
    return response


def upload_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def staged(settings: Settings, url: str) -> Path:
    return settings.tus_dir / upload_id(url)


async def user_of(services: Services, api: Api) -> User:
    assert api.token is not None
    found = await services.auth.authenticate(api.token)
    assert found is not None
    return found[0]


async def next_event(mailbox: Mailbox, seconds: float = 10.0) -> Event:
    """The next event as the events socket would send it."""
    event = await asyncio.wait_for(mailbox.get(), seconds)
    assert event is not None
    return event_json(event)


async def event_of(mailbox: Mailbox, kind: str, transfer: str) -> Event:
    while True:
        event = await next_event(mailbox)
        if event["type"] == kind and event.get("upload_id") == transfer:
            return event


async def still_serving(api: Api) -> None:
    response = await api.fetch(UPLOADS + "/", "OPTIONS")
    assert response.code == 204


class RawRequest:
    """A request written by hand on its own socket, so that a test can stop mid-body."""

    def __init__(self, stream: tornado.iostream.IOStream) -> None:
        self.stream = stream

    @classmethod
    async def start(
        cls, base_url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> RawRequest:
        stream = await TCPClient().connect("127.0.0.1", port_of(base_url))
        lines = [f"{method} {path} HTTP/1.1", "Host: test"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        await stream.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return cls(stream)

    async def send(self, data: bytes) -> None:
        await self.stream.write(data)

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        raw = await asyncio.wait_for(self.stream.read_until(b"\r\n\r\n", max_bytes=65536), 10)
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await self.stream.read_bytes(length) if length else b""
        return int(status_line.split(" ")[1]), headers, body

    def close(self) -> None:
        self.stream.close()


async def raw_patch(api: Api, base_url: str, url: str, offset: int, length: int) -> RawRequest:
    assert api.token is not None
    headers = {
        "Authorization": f"Bearer {api.token}",
        **DATA,
        "Upload-Offset": str(offset),
        "Content-Length": str(length),
    }
    return await RawRequest.start(base_url, "PATCH", url, headers)


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


# checksums -------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256"])
async def test_a_bad_chunk_is_460_and_a_good_retry_continues(
    api: Api, settings: Settings, algorithm: str
) -> None:
    data = picture(200_000)
    url = await new_upload(api, data)
    first = await patch(
        api, url, 0, data[:80_000], **{"Upload-Checksum": checksum(algorithm, data[:80_000])}
    )
    assert first.code == 204, first.body

    chunk = data[80_000:160_000]
    corrupted = chunk[:-1] + bytes([chunk[-1] ^ 1])
    response = await patch(
        api, url, 80_000, corrupted, **{"Upload-Checksum": checksum(algorithm, chunk)}
    )
    assert response.code == 460
    assert response.reason == "Checksum Mismatch"
    assert_json_error(response, 460, "checksum_mismatch")
    assert await offset_of(api, url) == 80_000
    assert staged(settings, url).read_bytes() == data[:80_000]

    retry = await patch(api, url, 80_000, chunk, **{"Upload-Checksum": checksum(algorithm, chunk)})
    assert retry.code == 204 and retry.headers["Upload-Offset"] == "160000"
    last = await patch(api, url, 160_000, data[160_000:])
    # The running digests went back with the file: the image id is the real hash.
    assert last.headers["Tubei-Image-Id"] == sha256(data)
    assert (await api.fetch(f"{API}/images/{sha256(data)}/original")).body == data


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("crc32 AAAAAA==", "checksum_algorithm_unsupported"),
        ("blake2b " + b64(bytes(64)), "checksum_algorithm_unsupported"),
        ("sha1", "invalid_header"),
        ("sha1 not-base64!", "invalid_header"),
        ("sha1 " + b64(bytes(10)), "invalid_header"),
    ],
)
async def test_a_malformed_checksum_is_400(api: Api, header: str, code: str) -> None:
    url = await new_upload(api, picture())
    response = await patch(api, url, 0, b"abc", **{"Upload-Checksum": header})
    assert_json_error(response, 400, code)
    assert await offset_of(api, url) == 0


@pytest.mark.gen_test(timeout=30)
async def test_whole_file_sha256_mismatch_is_460_and_the_upload_is_dropped(
    api: Api, services: Services, settings: Settings
) -> None:
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = picture()
    wrong = hashlib.sha256(b"something else").hexdigest()
    url = await new_upload(api, data, sha256=wrong)
    assert (await patch(api, url, 0, data[:50_000])).code == 204
    response = await patch(api, url, 50_000, data[50_000:])
    assert_json_error(response, 460, "checksum_mismatch")
    failed = await event_of(mailbox, "upload.failed", upload_id(url))
    assert failed["error"]["code"] == "checksum_mismatch"
    assert (await head(api, url)).code == 404
    assert files_in(settings.tmp_dir) == []
    assert files_in(settings.blobs_dir) == []
    assert await ids_in(api) == []

    right = await new_upload(api, data, sha256=sha256(data).upper())
    assert (await send_all(api, right, data)).headers["Tubei-Image-Id"] == sha256(data)


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


# X-HTTP-Method-Override ------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_method_override_as_wechat_sends_it(api: Api, settings: Settings) -> None:
    data = picture()
    url = await new_upload(api, data)
    first = await patch(api, url, 0, data[:60_000], override=True)
    assert first.code == 204, first.body
    assert first.headers["Upload-Offset"] == "60000"

    described = await api.fetch(url, "POST", b"", {**TUS, "X-HTTP-Method-Override": "HEAD"})
    assert described.code == 200
    assert described.headers["Upload-Offset"] == "60000"
    assert described.headers["Upload-Length"] == str(len(data))
    assert described.body == b""

    last = await patch(api, url, 60_000, data[60_000:], override=True)
    assert last.headers["Tubei-Image-Id"] == sha256(data)

    other = await new_upload(api, picture())
    gone = await api.fetch(other, "POST", b"", {**TUS, "X-HTTP-Method-Override": "delete"})
    assert gone.code == 204
    assert (await head(api, other)).code == 404
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_method_override_refusals(api: Api) -> None:
    url = await new_upload(api, picture())
    response = await api.fetch(url, "POST", b"", {**TUS, "X-HTTP-Method-Override": "PUT"})
    assert_json_error(response, 400, "bad_request")
    response = await api.fetch(url, "POST", b"", TUS)
    assert_json_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "OPTIONS, HEAD, PATCH, DELETE"
    response = await api.fetch(
        UPLOADS + "/", "POST", b"", {**TUS, "X-HTTP-Method-Override": "PATCH"}
    )
    assert_json_error(response, 405, "method_not_allowed")
    # The override is for POST only: a GET with it is still a GET.
    response = await api.fetch(url, "GET", None, {**TUS, "X-HTTP-Method-Override": "HEAD"})
    assert_json_error(response, 405, "method_not_allowed")
    assert await offset_of(api, url) == 0


# restarts --------------------------------------------------------------------


@asynccontextmanager
async def running(
    settings: Settings, token: str | None = None
) -> AsyncIterator[tuple[Api, Services]]:
    """A whole server on its own port: services, app, HTTP server; closed at the end."""
    services = build_services(settings)
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(make_app(settings, services))
    server.add_sockets([sock])
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        if token is None:
            token = (await services.auth.issue_token("hana", "pytest")).token
        yield Api(client, f"http://127.0.0.1:{port}", token), services
    finally:
        server.stop()
        await server.close_all_connections()
        client.close()
        await services.close()


@pytest.mark.gen_test(timeout=30)
async def test_offsets_survive_a_restart_and_bytes_past_them_are_cut(
    settings: Settings,
) -> None:
    data = picture(300_000)
    async with running(settings) as (api, _):
        url = await new_upload(api, data, "restart.jpg")
        assert (await patch(api, url, 0, data[:120_000])).code == 204
        token = api.token

    # As if the process died after writing more but before recording it.
    with staged(settings, url).open("ab") as file:
        file.write(data[120_000:125_000] + b"garbage")

    async with running(settings, token) as (api, _):
        assert await offset_of(api, url) == 120_000
        assert_json_error(await patch(api, url, 125_007, b"x"), 409, "offset_mismatch")
        assert (await patch(api, url, 120_000, data[120_000:200_000])).code == 204
        assert staged(settings, url).read_bytes() == data[:200_000]

    async with running(settings, token) as (api, _):
        last = await send_all(api, url, data)
        # The digests were rebuilt from the file after each restart.
        assert last.headers["Tubei-Image-Id"] == sha256(data)
        assert (await api.fetch(f"{API}/images/{sha256(data)}/original")).body == data
        code, item = await api.json(f"{API}/images/{sha256(data)}")
        assert code == 200 and item["filename"] == "restart.jpg"
        assert item["md5"] == hashlib.md5(data).hexdigest()
        assert files_in(settings.tmp_dir) == []

    async with running(settings, token) as (api, _):
        described = await head(api, url)
        assert described.headers["Tubei-Image-Id"] == sha256(data)


@pytest.mark.gen_test(timeout=30)
async def test_a_file_shorter_than_its_offset_resumes_from_what_is_there(
    settings: Settings,
) -> None:
    data = picture()
    async with running(settings) as (api, _):
        url = await new_upload(api, data)
        assert (await patch(api, url, 0, data[:80_000])).code == 204
        token = api.token
    # Only a crash during ingest does this (the file moved into blobs/ before the
    # offset was recorded); the server must not claim bytes it does not have.
    staged(settings, url).unlink()
    async with running(settings, token) as (api, _):
        assert await offset_of(api, url) == 80_000
        assert_json_error(
            await patch(api, url, 80_000, data[80_000:90_000]), 409, "offset_mismatch"
        )
        assert await offset_of(api, url) == 0
        assert (await send_all(api, url, data)).headers["Tubei-Image-Id"] == sha256(data)
