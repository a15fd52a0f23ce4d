"""CORS: no Access-Control-* headers by default; exact configured origins only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from tests.conftest import Api, unique_jpeg
from tests.handlers.helpers import API, upload_one

GALLERY = "https://gallery.example"
EVIL = "https://evil.example"


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    origins = getattr(request, "param", ())
    return Settings(data=tmp_path / "data", gc_interval=3600, cors_origins=origins)


allowing_the_gallery = pytest.mark.parametrize("settings", [(GALLERY,)], indirect=True)


def cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.get_all() if k.lower().startswith("access-control")}


def preflight(origin: str, method: str = "GET") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


@pytest.mark.gen_test
async def test_closed_by_default(api: Api, anonymous: Api) -> None:
    item = await upload_one(api, unique_jpeg())
    for who, path, method in [
        (anonymous, f"{API}/health", "GET"),
        (api, f"{API}/images", "GET"),
        (api, f"{API}/images/{item['id']}/original", "GET"),
        (anonymous, f"{API}/images", "GET"),  # an error
        (anonymous, f"{API}/uploads/", "OPTIONS"),
    ]:
        response = await who.fetch(path, method, headers={"Origin": GALLERY})
        assert cors_headers(response) == {}, (path, response.headers)
        assert "Origin" not in response.headers.get("Vary", "")
    for path in (f"{API}/images", f"{API}/uploads/", f"{API}/health"):
        response = await anonymous.fetch(path, "OPTIONS", headers=preflight(GALLERY, "POST"))
        assert cors_headers(response) == {}, path
        assert response.code != 204 or path.endswith("/uploads/")  # tus answers its own OPTIONS


@allowing_the_gallery
@pytest.mark.gen_test
async def test_an_allowed_origins_preflight_is_answered_without_a_token(
    settings: Settings, anonymous: Api
) -> None:
    for path, method in [
        (f"{API}/images", "POST"),
        (f"{API}/images/{'a' * 64}", "DELETE"),
        (f"{API}/uploads/", "POST"),
        (f"{API}/uploads/abc", "PATCH"),
        (f"{API}/devices/3", "DELETE"),
    ]:
        response = await anonymous.fetch(path, "OPTIONS", headers=preflight(GALLERY, method))
        assert response.code == 204, (path, response.body)
        headers = cors_headers(response)
        assert headers["Access-Control-Allow-Origin"] == GALLERY
        assert method in headers["Access-Control-Allow-Methods"]
        allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "upload-offset", "x-upload-id"} <= allowed
        assert int(headers["Access-Control-Max-Age"]) > 0
        assert "Access-Control-Allow-Credentials" not in headers
        assert response.body == b""


@allowing_the_gallery
@pytest.mark.gen_test
async def test_other_origins_get_nothing(settings: Settings, api: Api, anonymous: Api) -> None:
    for origin in (EVIL, GALLERY + ":8443", "http://gallery.example", GALLERY + ".evil.example"):
        response = await anonymous.fetch(f"{API}/images", "OPTIONS", headers=preflight(origin))
        assert response.code in (401, 405) and cors_headers(response) == {}, origin
        response = await api.fetch(f"{API}/images", headers={"Origin": origin})
        assert response.code == 200 and cors_headers(response) == {}, origin
        assert response.headers["Vary"] == "Origin"


@allowing_the_gallery
@pytest.mark.gen_test
async def test_an_allowed_origin_can_read_answers_and_errors(
    settings: Settings, api: Api, anonymous: Api
) -> None:
    item = await upload_one(api, unique_jpeg())
    origin = {"Origin": GALLERY}
    for who, path, method, status in [
        (api, f"{API}/images", "GET", 200),
        (api, f"{API}/images/{item['id']}/original", "GET", 200),
        (api, f"{API}/images/{item['id']}/thumbnail", "GET", 200),
        (api, f"{API}/images/{'0' * 64}/original", "GET", 404),
        (api, f"{API}/devices", "GET", 200),
        (anonymous, f"{API}/images", "GET", 401),
        (anonymous, f"{API}/health", "GET", 200),
    ]:
        response = await who.fetch(path, method, headers=origin)
        assert response.code == status, (path, response.body)
        headers = cors_headers(response)
        assert headers["Access-Control-Allow-Origin"] == GALLERY, path
        assert "ETag" in headers["Access-Control-Expose-Headers"]
        assert response.headers["Vary"] == "Origin"
    tus = await api.fetch(
        f"{API}/uploads/",
        "POST",
        b"",
        {**origin, "Tus-Resumable": "1.0.0", "Upload-Length": "10"},
    )
    assert tus.code == 201
    assert cors_headers(tus)["Access-Control-Allow-Origin"] == GALLERY
    assert "Upload-Offset" in cors_headers(tus)["Access-Control-Expose-Headers"]
