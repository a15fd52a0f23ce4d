"""The web app's handlers: index.html for / and deep links, hashed assets, the policy,
and what a server without a built app answers; over real sockets, from a dist folder
written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient

from server.config import Settings
from server.handlers.web import ASSETS_CACHE, content_security_policy
from tests.handlers.helpers import API, assert_json_error

INDEX = (
    b'<!doctype html><title>t</title><script type="module" src="/assets/app-1a2b3c.js"></script>'
)
Client = tornado.httpclient.AsyncHTTPClient
SCRIPT = b"console.log('tubei')\n" * 100


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "app-1a2b3c.js").write_bytes(SCRIPT)
    return root


@pytest.fixture
def settings(tmp_path: Path, dist: Path) -> Settings:
    return Settings(data=tmp_path / "data", gc_interval=3600, web=dist)


async def get(client: Client, url: str, **kwargs: Any) -> tornado.httpclient.HTTPResponse:
    return await client.fetch(url, raise_error=False, **kwargs)


def directives(policy: str) -> dict[str, list[str]]:
    parts = (item.split() for item in policy.split(";") if item.strip())
    return {name: values for name, *values in parts}


@pytest.mark.gen_test
async def test_index_at_root_and_deep_paths(
    http_server: object, http_client: Client, base_url: str
) -> None:
    for path in ("/", "/trash", "/some/deep/link?x=1"):
        response = await get(http_client, base_url + path)
        assert response.code == 200, path
        assert response.body == INDEX
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.gen_test
async def test_index_is_revalidated_with_its_etag(
    http_server: object, http_client: Client, base_url: str
) -> None:
    first = await get(http_client, base_url + "/")
    etag = first.headers["ETag"]
    again = await get(http_client, base_url + "/", headers={"If-None-Match": etag})
    assert again.code == 304


@pytest.mark.gen_test
async def test_a_new_build_is_served_at_once(
    http_server: object, http_client: Client, base_url: str, dist: Path
) -> None:
    await get(http_client, base_url + "/")
    (dist / "index.html").write_bytes(INDEX + b"<!-- rebuilt, and longer -->")
    response = await get(http_client, base_url + "/")
    assert response.body.endswith(b"<!-- rebuilt, and longer -->")


@pytest.mark.gen_test
async def test_policy(http_server: object, http_client: Client, base_url: str) -> None:
    response = await get(http_client, base_url + "/")
    policy = directives(response.headers["Content-Security-Policy"])
    host = base_url.removeprefix("http://")
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "blob:", "data:"]
    assert policy["media-src"] == ["'self'", "blob:"]
    assert policy["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    assert policy["worker-src"] == ["'self'", "blob:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert not any("unsafe-inline" in v for values in policy.values() for v in values)


def test_policy_leaves_out_a_host_it_cannot_quote() -> None:
    policy = directives(content_security_policy("evil; script-src *"))
    assert policy["connect-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert directives(content_security_policy("[::1]:8000"))["connect-src"][1] == "ws://[::1]:8000"


@pytest.mark.gen_test
async def test_assets_are_immutable_with_conditional_and_ranged_gets(
    http_server: object, http_client: Client, base_url: str
) -> None:
    url = base_url + "/assets/app-1a2b3c.js"
    response = await get(http_client, url)
    assert response.code == 200
    assert response.body == SCRIPT
    assert response.headers["Cache-Control"] == ASSETS_CACHE
    assert "javascript" in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Expires" not in response.headers
    etag = response.headers["ETag"]
    again = await get(http_client, url, headers={"If-None-Match": etag})
    assert again.code == 304
    part = await get(http_client, url, headers={"Range": "bytes=0-6"})
    assert part.code == 206
    assert part.body == SCRIPT[:7]


@pytest.mark.gen_test
async def test_missing_asset_is_a_404_not_the_index(
    http_server: object, http_client: Client, base_url: str
) -> None:
    response = await get(http_client, base_url + "/assets/gone-000000.js")
    assert_json_error(response, 404, "not_found")
    escape = await get(http_client, base_url + "/assets/..%2f..%2fdata%2fcatalog.sqlite3")
    assert escape.code in (403, 404)


@pytest.mark.gen_test
async def test_unknown_api_paths_keep_their_json_404(
    http_server: object, http_client: Client, base_url: str
) -> None:
    for path in (f"{API}/nothing-here", f"{API}/", "/api/v2/images", "/api", "/metrics"):
        response = await get(http_client, base_url + path)
        assert_json_error(response, 404, "not_found")
        assert json.loads(response.body)["error"]["code"] == "not_found"


@pytest.mark.gen_test
async def test_other_methods_are_not_allowed(
    http_server: object, http_client: Client, base_url: str
) -> None:
    response = await get(http_client, base_url + "/", method="POST", body=b"")
    assert_json_error(response, 405, "method_not_allowed")


class TestNotBuilt:
    @pytest.fixture
    def dist(self, tmp_path: Path) -> Path:
        return tmp_path / "never-built"

    @pytest.mark.gen_test
    async def test_root_says_how_to_build(
        self, http_server: object, http_client: Client, base_url: str
    ) -> None:
        response = await get(http_client, base_url + "/")
        assert response.code == 503
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-store"
        assert directives(response.headers["Content-Security-Policy"])["default-src"] == ["'none'"]
        page = response.body.decode()
        assert "<script" not in page
        assert "scripts/run" in page and "npm run build:web" in page and "Node.js 20" in page
        health = await get(http_client, base_url + f"{API}/health")
        assert health.code == 200


class TestOff:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data=tmp_path / "data", gc_interval=3600, web=None)

    @pytest.mark.gen_test
    async def test_no_app_at_all(
        self, http_server: object, http_client: Client, base_url: str
    ) -> None:
        for path in ("/", "/assets/app-1a2b3c.js"):
            response = await get(http_client, base_url + path)
            assert_json_error(response, 404, "not_found")
