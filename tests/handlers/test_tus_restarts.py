"""tus uploads across server restarts: offsets kept, bytes past them cut."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.iostream
from tornado.testing import bind_unused_port

from server.app import make_app
from server.config import Settings
from server.services import Services, build_services
from tests.conftest import Api
from tests.handlers.helpers import API, assert_json_error, files_in, sha256
from tests.handlers.tus_client import head, new_upload, offset_of, patch, picture, send_all, staged

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
