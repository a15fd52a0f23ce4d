"""`--events redis://...`: real `serve` processes, the shell's `revoke`, one real Redis.

The servers keep separate data folders (they do not share a catalog), so the first
user of each is user 1 on both: what one server publishes for its user 1 reaches the
sockets of the other's. Each test runs a redis-server of its own on a free port.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import tornado.ioloop
import tornado.websocket

from tests.conftest import multipart, unique_jpeg
from tests.redis_server import RedisServer, free_port
from tests.server_cli import Server, cli, environment, request, serving
from tests.test_main_devices import listed, token_for

Socket = tornado.websocket.WebSocketClientConnection
PING = "60"  # far beyond the tests: a socket closed in time was not closed by a sweep
_open: list[Socket] = []


@pytest.fixture(autouse=True)
def close_sockets(io_loop: tornado.ioloop.IOLoop) -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def serve_flags(data: Path, port: int, events: str) -> list[str]:
    return [
        "--host", "127.0.0.1",
        "--port", str(port),
        "--data", str(data),
        "--events", events,
        "--ping-interval", PING,
    ]  # fmt: skip


def start_servers(
    stack: ExitStack, tmp_path: Path, events: str, names: tuple[str, ...]
) -> dict[str, tuple[Server, Path]]:
    started = {}
    for name in names:
        data, port = tmp_path / name, free_port()
        server = stack.enter_context(
            serving(tmp_path, serve_flags(data, port, events), environment(), port)
        )
        started[name] = (server, data)
    return started


async def listen(server: Server, token: str) -> Socket:
    url = server.url.replace("http://", "ws://") + f"/events?token={token}"
    ws = await tornado.websocket.websocket_connect(url)
    _open.append(ws)
    hello = json.loads(await receive(ws))
    assert hello["type"] == "hello"
    return ws


async def receive(ws: Socket, seconds: float = 15.0) -> str:
    message = await asyncio.wait_for(ws.read_message(), seconds)
    assert message is not None, f"socket closed: {ws.close_code} {ws.close_reason}"
    assert isinstance(message, str)
    return message


async def events_until(ws: Socket, last_type: str, seconds: float = 15.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != last_type:
        seen.append(json.loads(await receive(ws, seconds)))
    return seen


def upload(server: Server, token: str, upload_id: str, data: bytes) -> dict[str, Any]:
    body, content_type = multipart([("photo", f"{upload_id}.jpg", data)])
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": content_type,
        "X-Upload-Id": upload_id,
    }
    status, _, answer = request(server.url + "/images", "POST", body, headers)
    assert status == 200, answer
    result: dict[str, Any] = json.loads(answer)
    return result


@pytest.mark.gen_test(timeout=90)
async def test_an_upload_on_one_server_is_heard_by_a_socket_on_another(
    tmp_path: Path, redis_url: str
) -> None:
    with ExitStack() as stack:
        servers = start_servers(stack, tmp_path, redis_url, ("a", "b"))
        (a, a_data), (b, b_data) = servers["a"], servers["b"]
        on_a = await asyncio.to_thread(token_for, a_data, "mum", "phone")
        on_b = await asyncio.to_thread(token_for, b_data, "mum", "tablet")
        ws = await listen(b, on_b)
        data = unique_jpeg()
        result = await asyncio.to_thread(upload, a, on_a, "via-a", data)
        seen = await events_until(ws, "image.added")
        types = [e["type"] for e in seen]
        assert types[0] == "upload.progress" and "upload.done" in types
        assert all(e.get("upload_id") == "via-a" for e in seen if e["type"].startswith("upload."))
        done = next(e for e in seen if e["type"] == "upload.done")
        assert done["image"]["id"] == result["items"][0]["id"] == seen[-1]["image"]["id"]
        ws.close()
        assert a.stop() == 0 and b.stop() == 0


@pytest.mark.gen_test(timeout=90)
async def test_revoke_from_the_shell_closes_the_socket_at_once(
    tmp_path: Path, redis_url: str
) -> None:
    with ExitStack() as stack:
        servers = start_servers(stack, tmp_path, redis_url, ("a",))
        a, data = servers["a"]
        phone = await asyncio.to_thread(token_for, data, "mum", "phone")
        tablet = await asyncio.to_thread(token_for, data, "mum", "tablet")
        phone_ws, tablet_ws = await listen(a, phone), await listen(a, tablet)
        tablet_id = (await asyncio.to_thread(listed, data, "--user", "mum"))[1][0]
        began = time.monotonic()
        revoked = await asyncio.to_thread(
            cli, "revoke", "--data", str(data), "--events", redis_url, tablet_id
        )
        assert revoked.returncode == 0, revoked.stderr
        assert "warning" not in revoked.stderr
        # At once: the server's own check would come only after --ping-interval (60 s).
        assert await asyncio.wait_for(tablet_ws.read_message(), 20) is None
        assert time.monotonic() - began < 20
        assert tablet_ws.close_code == 4403
        told = json.loads(await receive(phone_ws))
        assert told == {"type": "device.revoked", "device_id": int(tablet_id)}
        phone_ws.close()
        assert a.stop() == 0


@pytest.mark.gen_test(timeout=120)
async def test_redis_restarted_mid_run_sockets_stay_resync_and_nothing_is_lost(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    with ExitStack() as stack:
        servers = start_servers(stack, tmp_path, own_redis.url, ("a", "b"))
        (a, a_data), (b, b_data) = servers["a"], servers["b"]
        on_a = await asyncio.to_thread(token_for, a_data, "mum", "phone")
        on_b = await asyncio.to_thread(token_for, b_data, "mum", "tablet")
        a_ws, b_ws = await listen(a, on_a), await listen(b, on_b)

        own_redis.kill()
        await asyncio.sleep(0.5)  # both servers have seen the connection go
        during = [unique_jpeg() for _ in range(3)]
        stored = []
        for n, data in enumerate(during):  # uploads while Redis is down
            result = await asyncio.to_thread(upload, a, on_a, f"during-{n}", data)
            stored.append(result["items"][0]["id"])
        # A's own socket hears A's uploads throughout.
        heard = set()
        while len(heard) < len(stored):
            event = json.loads(await receive(a_ws))
            if event["type"] == "image.added":
                heard.add(event["image"]["id"])
        assert heard == set(stored)
        listing = a.call("/images", on_a)
        assert {item["id"] for item in listing["items"]} >= set(stored)

        own_redis.start()
        # B's socket missed A's uploads: it is told to reload; A's is told too.
        assert json.loads(await receive(b_ws, 30))["type"] == "resync"
        assert json.loads(await receive(a_ws, 30))["type"] == "resync"

        # And events flow between the servers again (a second resync may come first).
        deadline = time.monotonic() + 30
        while True:
            await asyncio.to_thread(upload, a, on_a, "after", unique_jpeg())
            try:
                seen = await events_until(b_ws, "image.added", 5)
            except TimeoutError:
                # A's link was not back yet: what it dropped is owed as a resync (already
                # read above, or in `seen`), and the next upload tries again.
                seen = []
            if any(e.get("upload_id") == "after" for e in seen):
                break
            assert time.monotonic() < deadline
        assert {e["type"] for e in seen} <= {
            "resync",
            "upload.progress",
            "upload.done",
            "image.added",
        }
        for ws in (a_ws, b_ws):
            assert ws.close_code is None  # never dropped
            ws.close()
        assert a.stop() == 0 and b.stop() == 0
        log = a.log.read_text()
        assert "lost Redis" in log and "is back" in log and "Traceback" not in log


def test_an_unreachable_redis_stops_serve_with_one_clear_line(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    began = time.monotonic()
    run = cli(
        "serve", "--host", "127.0.0.1", "--port", "0", "--data", str(tmp_path), "--events", url
    )
    assert run.returncode == 1
    assert time.monotonic() - began < 20
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"cannot reach Redis at {url}" in errors[0], run.stderr
    assert "--events" in errors[0] and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("extra", "args", "named"),
    [
        ({}, ["--events", "redis://127.0.0.1:99999/0"], "--events"),
        ({"TUBEI_EVENTS": "redis:/127.0.0.1"}, [], "TUBEI_EVENTS"),
        ({"TUBEI_EVENTS": "memcached://127.0.0.1"}, [], "TUBEI_EVENTS"),
    ],
)
def test_a_malformed_events_url_is_exit_2_naming_it(
    tmp_path: Path, extra: dict[str, str], args: list[str], named: str
) -> None:
    data = tmp_path / "data"
    run = cli("serve", "--data", str(data), *args, env=environment(**extra))
    assert run.returncode == 2
    assert run.stderr.startswith(f"configuration error: {named}:")
    assert "Traceback" not in run.stderr
    assert not data.exists()


def test_revoke_with_redis_unreachable_still_revokes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token_for(data, "mum", "phone")
    device_id = listed(data)[0][0]
    url = f"redis://127.0.0.1:{free_port()}/0"
    run = cli("revoke", "--data", str(data), "--events", url, device_id)
    assert run.returncode == 0, run.stderr
    assert f"revoked device {device_id}" in run.stdout
    assert f"warning: cannot reach Redis at {url}" in run.stderr
    assert "Traceback" not in run.stderr
    assert listed(data) == []
