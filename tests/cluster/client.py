"""What the cluster tests do as a client: uploads, listings, sockets, on any node."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import tornado.websocket

from tests.conftest import multipart
from tests.server_cli import request

Socket = tornado.websocket.WebSocketClientConnection


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def upload(
    base: str, token: str, filename: str, data: bytes, upload_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    body, content_type = multipart([("photo", filename, data)])
    headers = auth(token, **{"Content-Type": content_type})
    if upload_id is not None:
        headers["X-Upload-Id"] = upload_id
    return request(base + "/images", "POST", body, headers)


def uploaded(
    base: str, token: str, filename: str, data: bytes, upload_id: str | None = None
) -> Any:
    status, _, answer = upload(base, token, filename, data, upload_id)
    assert status == 200, (status, answer)
    return json.loads(answer)["items"][0]


def call(base: str, path: str, token: str, method: str = "GET") -> Any:
    status, _, answer = request(base + path, method, None, auth(token))
    assert status in (200, 204), (status, answer)
    return json.loads(answer) if answer else None


def listing(base: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = call(base, "/images?limit=500", token)["items"]
    return items


async def listen(base: str, token: str) -> Socket:
    url = base.replace("http://", "ws://") + f"/events?token={token}"
    ws = await tornado.websocket.websocket_connect(url)
    hello = json.loads(await receive(ws))
    assert hello["type"] == "hello", hello
    return ws


async def hang_up(ws: Socket) -> None:
    """Close `ws` and wait until its connection is gone: a socket only asked to close
    is left to a timer that the end of `asyncio.run` never fires, and is collected
    unclosed in whatever test runs then."""
    ws.close()
    with contextlib.suppress(asyncio.TimeoutError):
        while await asyncio.wait_for(ws.read_message(), 5) is not None:
            pass
    if ws.protocol is not None and ws.protocol.stream is not None:
        ws.protocol.stream.close()


async def receive(ws: Socket, seconds: float = 20.0) -> str:
    message = await asyncio.wait_for(ws.read_message(), seconds)
    assert message is not None, f"socket closed: {ws.close_code} {ws.close_reason}"
    assert isinstance(message, str)
    return message


async def events_until(ws: Socket, last_type: str, seconds: float = 20.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != last_type:
        seen.append(json.loads(await receive(ws, seconds)))
    return seen
