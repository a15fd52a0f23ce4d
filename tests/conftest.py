"""Shared fixtures: a real server on a real socket, its data in a temp folder."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.web
from PIL import Image

from server.app import make_app
from server.config import Settings
from server.services import Services, build_services
from tests import postgres_server, redis_server
from tests.postgres_server import postgres_database, postgres_url

__all__ = ["postgres_database", "postgres_url"]

# A real Ceph RADOS Gateway, started for the tests that ask for `s3_gateway`.
pytest_plugins = ("tests.s3_gateway",)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")


@pytest.fixture(autouse=True, scope="session")
def _no_implicit_event_loop() -> None:
    """Say at the start that no event loop is current, so none is ever made implicitly.

    Otherwise the first `io_loop` (pytest-tornado) asks `asyncio.get_event_loop()` for
    the loop to restore afterwards, and asyncio makes one: it stays current, unclosed,
    until a later `asyncio.run()` replaces it, and its collection (whenever the garbage
    collector happens to run) fails whatever test is running with a ResourceWarning.
    """
    asyncio.set_event_loop(None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `-n` (pytest-xdist, `--dist loadgroup`), every test on the session's Ceph
    gateway runs in one worker, so that one gateway is started, not one per worker.
    (First: xdist reads the mark in its own hook.)"""
    for item in items:
        if "s3_gateway" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("s3"))


def pytest_report_header() -> list[str]:
    return [redis_server.report_line(), postgres_server.report_line()]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No web app: what the API answers must not hang on whether `npm run build:web` ran
    # (tests/handlers/test_web.py serves a built app of its own).
    return Settings(data=tmp_path / "data", gc_interval=3600, web=None)


@pytest.fixture
def services(settings: Settings, io_loop: tornado.ioloop.IOLoop) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    close_within(io_loop, built, CLOSE_TIMEOUT)


# Seconds a test's services may take to close: a hang fails its test, naming what waits.
CLOSE_TIMEOUT = 60


def close_within(io_loop: tornado.ioloop.IOLoop, built: Services, timeout: float) -> None:
    async def close() -> str | None:
        closing = asyncio.ensure_future(built.close())
        done, _ = await asyncio.wait({closing}, timeout=timeout)
        if done:
            closing.result()
            return None
        stacks = []
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                out = io.StringIO()
                task.print_stack(file=out)
                stacks.append(out.getvalue())
        closing.cancel()
        return "\n".join(stacks)

    stuck = io_loop.run_sync(close)
    if stuck is not None:
        pytest.fail(f"the services did not close in {timeout:g} s; what waits:\n{stuck}")


@pytest.fixture
def app(settings: Settings, services: Services) -> tornado.web.Application:
    return make_app(settings, services)


def issue_token(services: Services, io_loop: tornado.ioloop.IOLoop, user: str) -> str:
    async def issue() -> str:
        return (await services.auth.issue_token(user, "pytest")).token

    return io_loop.run_sync(issue)


@pytest.fixture
def token(services: Services, io_loop: tornado.ioloop.IOLoop) -> str:
    return issue_token(services, io_loop, "alice")


@pytest.fixture
def other_token(services: Services, io_loop: tornado.ioloop.IOLoop) -> str:
    return issue_token(services, io_loop, "bob")


def jpeg_bytes(
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] = (200, 30, 30),
    exif: Image.Exif | None = None,
    quality: int = 90,
) -> bytes:
    """A real JPEG, different for every distinct argument set."""
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    image.save(out, "JPEG", quality=quality, exif=exif or Image.Exif())
    return out.getvalue()


def unique_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG no other call returns (random pixel noise in one corner)."""
    image = Image.new("RGB", size, (40, 90, 160))
    noise = Image.frombytes("RGB", (8, 8), uuid.uuid4().bytes * 12)
    image.paste(noise, (0, 0))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def multipart(
    files: list[tuple[str, str, bytes]],
    fields: dict[str, str] | None = None,
    boundary: str = "tubei-test-boundary-7MA4YWxkTrZu0gW",
) -> tuple[bytes, str]:
    """(body, content type) for (field, filename, bytes) files."""
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for field, filename, data in files:
        out.write(f"--{boundary}\r\n".encode())
        out.write(
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Api:
    """The HTTP API over a real socket, as one user (or nobody)."""

    def __init__(
        self, client: tornado.httpclient.AsyncHTTPClient, base_url: str, token: str | None
    ) -> None:
        self.client = client
        self.base_url = base_url
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    async def fetch(
        self,
        path: str,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tornado.httpclient.HTTPResponse:
        url = path if path.startswith("http") else self.base_url + path
        return await self.client.fetch(
            url,
            method=method,
            body=body,
            headers=self.headers(headers),
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=60,
            **kwargs,
        )

    async def json(
        self, path: str, method: str = "GET", body: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        raw = None if body is None else json.dumps(body)
        if raw is None and method in ("POST", "PUT"):
            raw = ""
        response = await self.fetch(path, method, raw, **kwargs)
        payload = json.loads(response.body) if response.body else None
        return response.code, payload

    async def upload(
        self, files: list[tuple[str, str, bytes]], path: str = "/api/v1/images"
    ) -> tuple[int, Any]:
        body, content_type = multipart(files)
        response = await self.fetch(path, "POST", body, {"Content-Type": content_type})
        return response.code, json.loads(response.body)


@pytest.fixture
def api(http_server: Any, http_client: Any, base_url: str, token: str) -> Api:
    return Api(http_client, base_url, token)


@pytest.fixture
def other_api(http_server: Any, http_client: Any, base_url: str, other_token: str) -> Api:
    return Api(http_client, base_url, other_token)


@pytest.fixture
def anonymous(http_server: Any, http_client: Any, base_url: str) -> Api:
    return Api(http_client, base_url, None)
