"""The events WebSocket, watched from real sockets while real transfers run."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.websocket

from server.services import Services
from tests.conftest import Api, multipart, unique_jpeg
from tests.handlers.helpers import API, port_of, sha256, upload_one

Socket = tornado.websocket.WebSocketClientConnection
_open: list[Socket] = []


@pytest.fixture(autouse=True)
def close_sockets(io_loop: tornado.ioloop.IOLoop) -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


async def connect(base_url: str, token: str | None) -> Socket:
    url = base_url.replace("http://", "ws://") + f"{API}/events"
    if token is not None:
        url += f"?token={token}"
    ws = await tornado.websocket.websocket_connect(url)
    _open.append(ws)
    return ws


async def listen(base_url: str, token: str) -> Socket:
    """A socket that is subscribed: its hello has arrived."""
    ws = await connect(base_url, token)
    hello = json.loads(await receive(ws))
    assert hello["type"] == "hello"
    return ws


async def receive(ws: Socket, seconds: float = 10.0) -> str:
    message = await asyncio.wait_for(ws.read_message(), seconds)
    assert message is not None, f"socket closed: {ws.close_code} {ws.close_reason}"
    assert isinstance(message, str)
    return message


async def events_until(ws: Socket, last_type: str, transfer_id: str) -> list[dict[str, Any]]:
    """Every event up to and including `last_type` for this transfer."""
    seen: list[dict[str, Any]] = []
    while True:
        event = json.loads(await receive(ws))
        seen.append(event)
        ids = {event.get("upload_id"), event.get("download_id")}
        if event["type"] == last_type and transfer_id in ids:
            return seen


def big_jpeg(megabytes: int) -> bytes:
    """A real JPEG padded past `megabytes` with an application segment... of noise."""
    head = unique_jpeg((320, 240))
    # JPEG readers skip APPn segments; chain 64 KiB APP15 segments after SOI.
    segment = b"\xff\xef" + (65535).to_bytes(2, "big") + bytes(65533)
    count = megabytes * 16 + 1
    return head[:2] + segment * count + head[2:]


def progress_of(events: list[dict[str, Any]], kind: str = "upload") -> list[int]:
    word = "received" if kind == "upload" else "sent"
    return [e[word] for e in events if e["type"] == f"{kind}.progress"]


@pytest.mark.gen_test(timeout=60)
async def test_a_40_mb_upload_is_watched_on_two_devices_and_by_no_one_else(
    api: Api, other_api: Api, base_url: str, token: str, other_token: str
) -> None:
    phone, tablet = await listen(base_url, token), await listen(base_url, token)
    stranger = await listen(base_url, other_token)
    data = big_jpeg(40)
    body, content_type = multipart([("photo", "big.jpg", data)])
    response = await api.fetch(
        f"{API}/images",
        "POST",
        body,
        {"Content-Type": content_type, "X-Upload-Id": "big-1"},
    )
    assert response.code == 200, response.body
    for ws in (phone, tablet):
        seen = await events_until(ws, "upload.done", "big-1")
        received = progress_of(seen)
        assert received, "no progress event"
        assert received == sorted(received)
        assert received[-1] == len(body)
        assert all(e["total"] == len(body) for e in seen if e["type"] == "upload.progress")
        done = seen[-1]
        assert done["duplicate"] is False
        assert done["image"]["sha256"] == sha256(data)
        assert [e["type"] for e in seen].index("upload.done") == len(seen) - 1
        added = json.loads(await receive(ws))
        assert added["type"] == "image.added" and added["image"]["id"] == sha256(data)
    # The stranger's first event is his own: nothing of alice's reached him.
    mine = await upload_one(other_api, unique_jpeg())
    first = json.loads(await receive(stranger))
    assert first["type"] == "image.added" and first["image"]["id"] == mine["id"]


@pytest.mark.gen_test(timeout=30)
async def test_progress_is_throttled_but_first_and_last_always_arrive(
    api: Api, base_url: str, token: str
) -> None:
    ws = await listen(base_url, token)
    data = big_jpeg(8)
    body, content_type = multipart([("photo", "p.jpg", data)])
    response = await api.fetch(
        f"{API}/images?upload_id=q-1", "POST", body, {"Content-Type": content_type}
    )
    assert response.code == 200
    seen = await events_until(ws, "upload.done", "q-1")
    received = progress_of(seen)
    chunks = len(body) // (64 * 1024)
    assert received[-1] == len(body)
    assert len(received) < chunks / 4, "progress is not throttled"


@pytest.mark.gen_test(timeout=30)
async def test_a_refused_upload_reports_failure(api: Api, base_url: str, token: str) -> None:
    ws = await listen(base_url, token)
    body, content_type = multipart([("photo", "notes.txt", b"just some text\n" * 100)])
    response = await api.fetch(
        f"{API}/images", "POST", body, {"Content-Type": content_type, "X-Upload-Id": "bad-1"}
    )
    assert response.code == 415
    seen = await events_until(ws, "upload.failed", "bad-1")
    assert seen[-1]["error"]["code"] == "unsupported_media_type"
    assert not [e for e in seen if e["type"] == "upload.done"]


@pytest.mark.gen_test(timeout=30)
async def test_an_upload_cut_off_reports_failure(
    api: Api, base_url: str, token: str, services: Services
) -> None:
    ws = await listen(base_url, token)
    body, content_type = multipart([("photo", "cut.jpg", big_jpeg(2))])
    head = (
        f"POST {API}/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "X-Upload-Id: cut-1\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port_of(base_url))) as raw:
        raw.sendall(head + body[: len(body) // 2])
        seen = []
        while not any(e["type"] == "upload.progress" for e in seen):
            seen.append(json.loads(await receive(ws)))
    seen = await events_until(ws, "upload.failed", "cut-1")
    assert seen[-1]["error"]["code"] == "upload_interrupted"


@pytest.mark.gen_test(timeout=30)
async def test_delete_and_restore_reach_the_other_device(
    api: Api, base_url: str, token: str, services: Services
) -> None:
    image = await upload_one(api, unique_jpeg())
    await services.library.thumbnails.drain()  # its image.added is behind us
    tablet = await listen(base_url, token)
    await api.fetch(f"{API}/images/{image['id']}", "DELETE")
    assert json.loads(await receive(tablet)) == {"type": "image.deleted", "id": image["id"]}
    await api.fetch(f"{API}/trash/{image['id']}/restore", "POST", b"")
    restored = json.loads(await receive(tablet))
    assert restored["type"] == "image.restored" and restored["image"]["id"] == image["id"]


@pytest.mark.gen_test(timeout=30)
async def test_a_duplicate_is_done_but_not_added_again(
    api: Api, base_url: str, token: str, services: Services
) -> None:
    data = unique_jpeg()
    await upload_one(api, data)
    await services.library.thumbnails.drain()
    ws = await listen(base_url, token)
    body, content_type = multipart([("photo", "again.jpg", data)])
    await api.fetch(
        f"{API}/images", "POST", body, {"Content-Type": content_type, "X-Upload-Id": "dup"}
    )
    seen = await events_until(ws, "upload.done", "dup")
    assert seen[-1]["duplicate"] is True
    await api.fetch(f"{API}/images/{seen[-1]['image']['id']}", "DELETE")
    assert json.loads(await receive(ws))["type"] == "image.deleted"  # no image.added between


@pytest.mark.gen_test(timeout=30)
async def test_download_progress_counts_up_to_the_size(api: Api, base_url: str, token: str) -> None:
    data = big_jpeg(3)
    image = await upload_one(api, data)
    ws = await listen(base_url, token)
    response = await api.fetch(
        f"{API}/images/{image['id']}/original", headers={"X-Download-Id": "save-1"}
    )
    assert response.body == data
    seen = await events_until(ws, "download.progress", "save-1")
    while seen[-1].get("sent") != len(data):
        seen += await events_until(ws, "download.progress", "save-1")
    sent = progress_of(seen, "download")
    assert sent == sorted(sent) and sent[-1] == len(data)
    last = seen[-1]
    assert last["total"] == len(data) and last["image_id"] == image["id"]


@pytest.mark.gen_test(timeout=30)
async def test_a_range_download_counts_the_range(api: Api, base_url: str, token: str) -> None:
    data = big_jpeg(1)
    image = await upload_one(api, data)
    ws = await listen(base_url, token)
    response = await api.fetch(
        f"{API}/images/{image['id']}/original?download_id=r-1",
        headers={"Range": "bytes=1000-"},
    )
    assert response.code == 206
    seen = await events_until(ws, "download.progress", "r-1")
    while seen[-1]["sent"] != len(data) - 1000:
        seen += await events_until(ws, "download.progress", "r-1")
    assert seen[-1]["total"] == len(data) - 1000


@pytest.mark.gen_test
@pytest.mark.parametrize("token_text", [None, "", "not-a-token"])
async def test_a_socket_without_a_valid_token_is_closed_with_4401(
    http_server: Any, base_url: str, token_text: str | None
) -> None:
    ws = await connect(base_url, token_text)
    assert await ws.read_message() is None
    assert ws.close_code == 4401
    assert ws.close_reason is not None and "token" in ws.close_reason


@pytest.mark.gen_test
async def test_the_authorization_header_also_works(
    http_server: Any, base_url: str, token: str
) -> None:
    request = tornado.httpclient.HTTPRequest(
        base_url.replace("http://", "ws://") + f"{API}/events",
        headers={"Authorization": f"Bearer {token}"},
    )
    ws = await tornado.websocket.websocket_connect(request)
    _open.append(ws)
    assert json.loads(await receive(ws))["type"] == "hello"
    ws.write_message("ping")
    assert json.loads(await receive(ws)) == {"type": "pong"}


@pytest.mark.gen_test(timeout=60)
async def test_a_stalled_socket_neither_slows_uploads_nor_loses_final_events(
    api: Api, base_url: str, token: str, services: Services
) -> None:
    # A client that subscribes and then stops reading, with a tiny receive window.
    loop = asyncio.get_running_loop()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await loop.sock_connect(raw, ("127.0.0.1", port_of(base_url)))
    await loop.sock_sendall(
        raw,
        (
            f"GET {API}/events?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    received = b""
    while b'"hello"' not in received:
        received += await asyncio.wait_for(loop.sock_recv(raw, 4096), 10)
    found = await services.auth.authenticate(token)
    assert found is not None
    user_id = found[0].id
    # Progress from eight transfers, bulky enough to fill every socket buffer between
    # the server and the stalled client, until events start to wait in its mailbox.
    pad = "x" * 32768
    stalled = 0
    for n in range(4000):
        services.events.publish(
            user_id,
            {"type": "upload.progress", "upload_id": f"t{n % 8}", "received": n, "pad": pad},
        )
        await asyncio.sleep(0.001)
        stalled = stalled + 1 if min(services.events.backlog(user_id)) >= 8 else 0
        if stalled >= 50:
            break
    assert stalled >= 50, "the socket never stalled"
    uploads = [unique_jpeg() for _ in range(6)]
    for n, data in enumerate(uploads):
        body, content_type = multipart([("photo", f"{n}.jpg", data)])
        response = await api.fetch(
            f"{API}/images", "POST", body, {"Content-Type": content_type, "X-Upload-Id": f"s{n}"}
        )
        assert response.code == 200
    await services.library.thumbnails.drain()
    backlog = services.events.backlog(user_id)
    # At most one progress event per transfer plus the final events wait.
    assert backlog and 8 <= max(backlog) <= 8 + 6 * 3
    # Once the client reads again, every final event arrives.
    wanted = [f'"upload_id": "s{n}"'.encode() for n in range(6)]
    while not all(w in received for w in wanted):
        received += await asyncio.wait_for(loop.sock_recv(raw, 1 << 20), 20)
        received = received[-(1 << 22) :]
    raw.close()
