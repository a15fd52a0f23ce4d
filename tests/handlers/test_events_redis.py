"""The events WebSocket of a server whose hub is Redis, with another process's hub beside it.

The server runs in the test's process on a redis-server of the test's own, reached
through a relay that slows what it sends; the other "process" is a second
`RedisEventHub` on the same Redis, publishing as another server would, without delay.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.ioloop
import tornado.websocket

from server.config import Settings
from server.services import Services, build_services
from server.services.events_redis import RedisEventHub
from tests.conftest import CLOSE_TIMEOUT, close_within
from tests.handlers.helpers import API
from tests.redis_server import RedisServer, Relay, redis_server_problem

Socket = tornado.websocket.WebSocketClientConnection
# Decided before any fixture runs: a skip from inside one would strand the test
# server's listening socket, bound before it.
pytestmark = pytest.mark.skipif(
    redis_server_problem() is not None, reason=redis_server_problem() or ""
)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def relay(own_redis: RedisServer, io_loop: tornado.ioloop.IOLoop) -> Iterator[Relay]:
    # This server's link to Redis is slow (a Redis across a network), the other's is not.
    link = Relay(own_redis.port, delay=0.05)
    io_loop.run_sync(link.mend)
    yield link
    io_loop.run_sync(link.cut)


@pytest.fixture
def settings(tmp_path: Path, relay: Relay) -> Settings:
    return Settings(data=tmp_path / "data", gc_interval=3600, events=relay.url)


@pytest.fixture
def services(settings: Settings, io_loop: tornado.ioloop.IOLoop) -> Iterator[Services]:
    built = build_services(settings)
    io_loop.run_sync(built.start)
    yield built
    close_within(io_loop, built, CLOSE_TIMEOUT)


@pytest.fixture
def elsewhere(own_redis: RedisServer, io_loop: tornado.ioloop.IOLoop) -> Iterator[RedisEventHub]:
    hub = RedisEventHub(own_redis.url)
    io_loop.run_sync(hub.start)
    yield hub
    io_loop.run_sync(hub.close)


async def connect(base_url: str, token: str) -> Socket:
    url = base_url.replace("http://", "ws://") + f"{API}/events?token={token}"
    return await tornado.websocket.websocket_connect(url)


async def receive(ws: Socket) -> dict[str, object]:
    message = await asyncio.wait_for(ws.read_message(), 10)
    assert isinstance(message, str), f"socket closed: {ws.close_code}"
    event: dict[str, object] = json.loads(message)
    return event


async def user_id(services: Services, token: str) -> int:
    found = await services.auth.authenticate(token)
    assert found is not None
    return found[0].id


@pytest.mark.gen_test(timeout=60)
async def test_after_hello_nothing_published_anywhere_is_missed(
    http_server: object, base_url: str, token: str, services: Services, elsewhere: RedisEventHub
) -> None:
    me = await user_id(services, token)
    for n in range(5):
        ws = await connect(base_url, token)
        try:
            assert (await receive(ws))["type"] == "hello"
            elsewhere.publish(me, {"type": "image.deleted", "id": f"x{n}"})  # at once
            assert await receive(ws) == {"type": "image.deleted", "id": f"x{n}"}
        finally:
            ws.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_revocation_on_another_process_closes_the_socket_here_at_once(
    http_server: object, base_url: str, token: str, services: Services, elsewhere: RedisEventHub
) -> None:
    found = await services.auth.authenticate(token)
    assert found is not None
    user, device = found
    ws = await connect(base_url, token)
    try:
        assert (await receive(ws))["type"] == "hello"
        elsewhere.publish(user.id, {"type": "device.revoked", "device_id": device.id})
        assert await asyncio.wait_for(ws.read_message(), 10) is None
        assert ws.close_code == 4403
        assert services.events.connected_devices() == set()
    finally:
        ws.close()
