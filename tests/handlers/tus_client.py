"""Talking tus to the server under test: uploads made, chunks sent, events read."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
from pathlib import Path

import tornado.httpclient
import tornado.httpserver
import tornado.iostream
from tornado.tcpclient import TCPClient

from server.catalog import User
from server.config import Settings
from server.services import Services
from server.services.events import Event, Mailbox
from server.views import event_json
from tests.conftest import Api
from tests.handlers.helpers import API, photo, port_of

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
