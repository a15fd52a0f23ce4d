"""`/api/v1/devices`: list the caller's devices, revoke one, and what revoking does
to its token and its open sockets, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.ioloop
import tornado.websocket

from server.config import Settings
from server.services import Services, build_services
from tests.conftest import Api, issue_token, unique_jpeg
from tests.handlers.helpers import API, assert_json_error, upload_one

Socket = tornado.websocket.WebSocketClientConnection


@pytest.fixture
def sockets(io_loop: tornado.ioloop.IOLoop) -> Iterator[list[Socket]]:
    opened: list[Socket] = []
    yield opened
    for ws in opened:
        ws.close()


async def listen(base_url: str, token: str, sockets: list[Socket]) -> Socket:
    url = base_url.replace("http://", "ws://") + f"{API}/events?token={token}"
    ws = await tornado.websocket.websocket_connect(url)
    sockets.append(ws)
    hello = await asyncio.wait_for(ws.read_message(), 10)
    assert hello is not None and json.loads(hello)["type"] == "hello"
    return ws


async def closed_with(ws: Socket, seconds: float = 10.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    while True:
        message = await asyncio.wait_for(ws.read_message(), seconds)
        if message is None:
            return ws.close_code
        assert "image" not in json.loads(message)["type"], message  # nothing after revoking


async def next_event(ws: Socket, seconds: float = 10.0) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.read_message(), seconds)
    assert message is not None, f"closed: {ws.close_code} {ws.close_reason}"
    event: dict[str, Any] = json.loads(message)
    return event


async def device_id_of(services: Services, token: str) -> int:
    found = await services.auth.authenticate(token)
    assert found is not None
    return found[1].id


@pytest.fixture
def second_token(services: Services, io_loop: tornado.ioloop.IOLoop) -> str:
    """Another device of alice's (the `token` fixture is her first)."""
    return issue_token(services, io_loop, "alice")


@pytest.mark.gen_test
async def test_the_caller_sees_their_own_devices(
    api: Api, other_api: Api, second_token: str, services: Services
) -> None:
    code, body = await api.json(f"{API}/devices")
    assert code == 200, body
    items = body["items"]
    assert [d["current"] for d in items] == [True, False]
    assert items[1]["id"] == await device_id_of(services, second_token)
    for item in items:
        assert set(item) == {"id", "name", "created_at", "last_seen_at", "current"}
        assert item["name"] == "pytest" and item["created_at"].endswith("Z")
    assert items[0]["last_seen_at"] is not None  # this very call

    code, bobs = await other_api.json(f"{API}/devices")
    assert code == 200
    assert [d["current"] for d in bobs["items"]] == [True]
    assert not {d["id"] for d in bobs["items"]} & {d["id"] for d in items}


@pytest.mark.gen_test
async def test_a_revoked_token_is_refused_everywhere_at_once(
    api: Api, second_token: str, services: Services, base_url: str, sockets: list[Socket]
) -> None:
    tablet = Api(api.client, api.base_url, second_token)
    photo = await upload_one(tablet, unique_jpeg())
    tablet_id = await device_id_of(services, second_token)

    response = await api.fetch(f"{API}/devices/{tablet_id}", "DELETE")
    assert response.code == 204, response.body

    for path in (f"{API}/images", f"{API}/images/{photo['id']}/original", f"{API}/devices"):
        assert_json_error(await tablet.fetch(path), 401, "unauthorized")
    seed = await tablet.fetch(f"{API}/service/image?md5={photo['md5']}")
    assert seed.code == 401 and json.loads(seed.body)["result_code"] == -500
    tus = await tablet.fetch(
        f"{API}/uploads/", "POST", b"", {"Tus-Resumable": "1.0.0", "Upload-Length": "10"}
    )
    assert tus.code == 401
    ws = await tornado.websocket.websocket_connect(
        base_url.replace("http://", "ws://") + f"{API}/events?token={second_token}"
    )
    sockets.append(ws)
    assert await closed_with(ws) == 4401

    # The phone that revoked it carries on, and the photo is still the user's.
    code, page = await api.json(f"{API}/images")
    assert code == 200 and [i["id"] for i in page["items"]] == [photo["id"]]
    code, body = await api.json(f"{API}/devices")
    assert [d["id"] for d in body["items"]] != [] and tablet_id not in [
        d["id"] for d in body["items"]
    ]
    # Revoking twice finds nothing to revoke.
    assert_json_error(
        await api.fetch(f"{API}/devices/{tablet_id}", "DELETE"), 404, "device_not_found"
    )


@pytest.mark.gen_test
async def test_revoking_closes_the_devices_sockets_and_tells_the_others(
    api: Api,
    other_api: Api,
    second_token: str,
    token: str,
    other_token: str,
    services: Services,
    base_url: str,
    sockets: list[Socket],
) -> None:
    tablet_sockets = [
        await listen(base_url, second_token, sockets),
        await listen(base_url, second_token, sockets),
    ]
    phone = await listen(base_url, token, sockets)
    stranger = await listen(base_url, other_token, sockets)
    tablet_id = await device_id_of(services, second_token)

    response = await api.fetch(f"{API}/devices/{tablet_id}", "DELETE")
    assert response.code == 204
    for ws in tablet_sockets:
        assert await closed_with(ws) == 4403
        assert ws.close_reason is not None and "revoked" in ws.close_reason
    assert await next_event(phone) == {"type": "device.revoked", "device_id": tablet_id}
    # The phone keeps its socket: its next event is the next photo.
    photo = await upload_one(api, unique_jpeg())
    event = await next_event(phone)
    assert event["type"] == "image.added" and event["image"]["id"] == photo["id"]
    # Bob heard nothing of alice's devices.
    mine = await upload_one(other_api, unique_jpeg())
    first = await next_event(stranger)
    assert first["type"] == "image.added" and first["image"]["id"] == mine["id"]
    assert services.events.connected_devices() == {
        await device_id_of(services, token),
        await device_id_of(services, other_token),
    }


@pytest.mark.gen_test
async def test_a_device_may_sign_itself_out(api: Api, services: Services) -> None:
    code, body = await api.json(f"{API}/devices")
    assert code == 200, body
    (me,) = [d for d in body["items"] if d["current"]]
    response = await api.fetch(f"{API}/devices/{me['id']}", "DELETE")
    assert response.code == 204
    assert_json_error(await api.fetch(f"{API}/devices"), 401, "unauthorized")


@pytest.mark.gen_test
async def test_another_users_device_is_not_found(
    api: Api, other_api: Api, other_token: str, services: Services
) -> None:
    bobs_device = await device_id_of(services, other_token)
    for raw in (str(bobs_device), "0", "-1", "abc", "1e3", "9" * 30, "٣", "99999"):
        response = await api.fetch(f"{API}/devices/{raw}", "DELETE")
        assert_json_error(response, 404, "device_not_found")
    code, body = await other_api.json(f"{API}/devices")
    assert code == 200 and [d["id"] for d in body["items"]] == [bobs_device]
    assert_json_error(await api.fetch(f"{API}/devices/{bobs_device}"), 405, "method_not_allowed")
    assert_json_error(await api.fetch(f"{API}/devices", "POST", b"{}"), 405, "method_not_allowed")


@pytest.mark.gen_test
async def test_devices_need_a_token(anonymous: Api) -> None:
    assert_json_error(await anonymous.fetch(f"{API}/devices"), 401, "unauthorized")
    assert_json_error(await anonymous.fetch(f"{API}/devices/1", "DELETE"), 401, "unauthorized")


@pytest.mark.gen_test(timeout=20)
async def test_a_device_revoked_from_another_process_has_its_sockets_closed(
    http_server: Any,
    token: str,
    second_token: str,
    services: Services,
    settings: Settings,
    base_url: str,
    sockets: list[Socket],
) -> None:
    tablet = await listen(base_url, second_token, sockets)
    phone = await listen(base_url, token, sockets)
    tablet_id = await device_id_of(services, second_token)

    # What `python -m server revoke` does: its own services on the same data folder.
    admin = build_services(settings)
    try:
        await admin.auth.revoke(tablet_id, None)
    finally:
        await admin.close()
    # The token is refused at once: every request looks it up.
    assert await services.auth.authenticate(second_token) is None
    # The socket closes at the server's next sweep.
    sweeps = asyncio.get_running_loop().create_task(services.run_revocation_sweeps_forever(0.1))
    try:
        assert await closed_with(tablet) == 4403
        assert await next_event(phone) == {"type": "device.revoked", "device_id": tablet_id}
    finally:
        sweeps.cancel()
    assert await services.auth.sweep_revoked() == []  # nothing left to close
