"""Every transport tells an upload's story with the same `upload.*` events, on the socket.

Multipart (`POST /images`), tus (`/uploads/`) and the seed's API
(`/api/v1/service/image`) all go through the library's one ingest and its one
reporter: progress that ends at the total, then exactly one `upload.done` (or
`upload.failed`), then the photo's `image.added`. Read here off a real WebSocket.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import tornado.websocket

from tests.conftest import Api, multipart
from tests.handlers.helpers import photo, sha256
from tests.handlers.tus_client import new_upload, patch, picture

Send = Callable[[Api, bytes, str], Awaitable[int]]


async def by_multipart(api: Api, data: bytes, upload_id: str) -> int:
    body, content_type = multipart([("photo", "a.jpg", data)])
    headers = {"Content-Type": content_type, "X-Upload-Id": upload_id}
    return (await api.fetch("/api/v1/images", "POST", body, headers)).code


async def by_seed(api: Api, data: bytes, upload_id: str) -> int:
    body, content_type = multipart([("test", "tmp_abc.jpg", data)])
    headers = {"Content-Type": content_type, "X-Upload-Id": upload_id}
    return (await api.fetch("/api/v1/service/image", "POST", body, headers)).code


async def by_tus(api: Api, data: bytes, upload_id: str) -> int:
    """A tus upload is named by its own id; `upload_id` is only the filename here."""
    url = await new_upload(api, data, f"{upload_id}.jpg")
    half = len(data) // 2
    first = await patch(api, url, 0, data[:half])
    if first.code != 204:
        return first.code
    last = await patch(api, url, half, data[half:])
    return 200 if last.code == 204 else last.code


TRANSPORTS: dict[str, Send] = {"multipart": by_multipart, "tus": by_tus, "seed": by_seed}


async def socket(api: Api) -> tornado.websocket.WebSocketClientConnection:
    url = api.base_url.replace("http", "ws") + f"/api/v1/events?token={api.token}"
    ws = await tornado.websocket.websocket_connect(url)
    hello = json.loads(await ws.read_message())  # type: ignore[arg-type]
    assert hello["type"] == "hello"
    return ws


async def story(ws: tornado.websocket.WebSocketClientConnection, until: str) -> list[Any]:
    """Events read off the socket up to and including the first of type `until`."""
    events: list[Any] = []
    while not events or events[-1]["type"] != until:
        message = await ws.read_message()
        assert isinstance(message, str), "the socket closed"
        events.append(json.loads(message))
    return events


def shape(events: list[Any]) -> list[str]:
    """The sequence of types, a run of progress events counted as one."""
    kinds: list[str] = []
    for event in events:
        if not (kinds and kinds[-1] == event["type"] == "upload.progress"):
            kinds.append(event["type"])
    return kinds


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_stored_photo_tells_the_same_story_on_every_transport(
    api: Api, transport: str
) -> None:
    ws = await socket(api)
    data = picture(200_000)
    assert await TRANSPORTS[transport](api, data, "same-story") == 200

    events = await story(ws, "image.added")
    ws.close()

    assert shape(events) == ["upload.progress", "upload.done", "image.added"]
    upload_ids = {e["upload_id"] for e in events if e["type"].startswith("upload.")}
    assert len(upload_ids) == 1
    progress = [e for e in events if e["type"] == "upload.progress"]
    assert all(e["total"] == progress[-1]["total"] for e in progress)
    assert progress[-1]["received"] == progress[-1]["total"]
    done = events[-2]
    assert done["image"]["id"] == sha256(data) and done["duplicate"] is False
    assert done["image"]["urls"]["original"] == f"/api/v1/images/{sha256(data)}/original"
    # Only a multipart request (the seed's API is one) lists its items.
    assert ("items" in done) == (transport != "tus")
    # The same image; its signed URLs were made a moment apart (seconds left differ).
    added, announced = dict(events[-1]["image"]), dict(done["image"])
    assert added.pop("signed_urls").keys() == announced.pop("signed_urls").keys()
    assert added == announced


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_refused_file_tells_the_same_story_on_every_transport(
    api: Api, transport: str
) -> None:
    ws = await socket(api)
    not_an_image = b"\x00not an image at all" * 5000
    assert await TRANSPORTS[transport](api, not_an_image, "refused") == 415

    events = await story(ws, "upload.failed")
    ws.close()

    assert shape(events) == ["upload.progress", "upload.failed"]
    assert events[-1]["error"]["code"] == "unsupported_media_type"
    assert set(events[-1]) == {"type", "upload_id", "error"}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_photo_sent_again_is_a_duplicate_on_every_transport(
    api: Api, transport: str
) -> None:
    data = photo()
    assert await TRANSPORTS["multipart"](api, data, "first") == 200
    ws = await socket(api)
    assert await TRANSPORTS[transport](api, data, "again") == 200

    events = [e for e in await story(ws, "upload.done") if e["type"].startswith("upload.")]
    ws.close()

    assert shape(events) == ["upload.progress", "upload.done"]
    assert events[-1]["duplicate"] is True
