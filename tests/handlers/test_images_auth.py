"""The image API's tokens, methods and routes."""

from __future__ import annotations

import pytest

from server.config import Settings
from tests.conftest import Api, multipart
from tests.handlers.helpers import (
    API,
    assert_json_error,
    blob_path,
    files_in,
    ids_in,
    photo,
    upload_one,
)
from tests.handlers.image_api import CHECK, IMAGES

# auth, methods, routes -------------------------------------------------------


def authed_calls(image_id: str) -> list[tuple[str, str]]:
    return [
        ("GET", IMAGES),
        ("POST", IMAGES),
        ("POST", CHECK),
        ("GET", f"{IMAGES}/{image_id}"),
        ("DELETE", f"{IMAGES}/{image_id}"),
        ("GET", f"{IMAGES}/{image_id}/original"),
        ("HEAD", f"{IMAGES}/{image_id}/original"),
        ("GET", f"{IMAGES}/{image_id}/thumbnail"),
        ("GET", f"{API}/trash"),
        ("POST", f"{API}/trash/{image_id}/restore"),
        ("DELETE", f"{API}/trash/{image_id}"),
    ]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-real-token", "Bearer ", "Basic YWxpY2U6c2VjcmV0"]
)
async def test_no_or_bad_token(
    api: Api, anonymous: Api, settings: Settings, authorization: str | None
) -> None:
    item = await upload_one(api, photo())
    for method, path in authed_calls(item["id"]):
        headers = {"Authorization": authorization} if authorization else {}
        body = None
        if method == "POST":
            body, content_type = multipart([("file", "x.jpg", photo())])
            headers["Content-Type"] = content_type
        response = await anonymous.fetch(path, method, body, headers)
        assert response.code == 401, (method, path, response.body)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
        if method != "HEAD":
            assert_json_error(response, 401, "unauthorized")
    assert files_in(settings.blobs_dir) == [blob_path(settings, item["id"])]
    assert await ids_in(api) == [item["id"]]


@pytest.mark.gen_test
async def test_a_token_of_another_person_is_not_mine(api: Api, other_api: Api) -> None:
    assert api.token != other_api.token
    await upload_one(api, photo())
    assert await ids_in(other_api) == []


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", IMAGES, "GET, POST"),
        ("DELETE", IMAGES, "GET, POST"),
        ("GET", CHECK, "POST"),
        ("DELETE", CHECK, "POST"),
        ("PATCH", f"{IMAGES}/{'b' * 64}", "GET, DELETE"),
        ("POST", f"{IMAGES}/{'b' * 64}", "GET, DELETE"),
        ("POST", f"{IMAGES}/{'b' * 64}/original", "GET, HEAD"),
        ("DELETE", f"{IMAGES}/{'b' * 64}/thumbnail", "GET, HEAD"),
        ("POST", f"{API}/trash", "GET"),
        ("GET", f"{API}/trash/{'b' * 64}/restore", "POST"),
    ],
)
async def test_wrong_method(api: Api, method: str, path: str, allowed: str) -> None:
    response = await api.fetch(path, method, b"" if method in ("POST", "PUT", "PATCH") else None)
    assert_json_error(response, 405, "method_not_allowed")
    assert sorted(response.headers["Allow"].split(", ")) == sorted(allowed.split(", "))


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path",
    [
        f"{API}/nothing-here",
        f"{API}/images/{'c' * 64}/elsewhere",
        f"{API}/images/{'c' * 64}/original/extra",
        "/",
        "/api/v2/images",
    ],
)
async def test_unknown_route(api: Api, anonymous: Api, path: str) -> None:
    assert_json_error(await api.fetch(path), 404, "not_found")
    assert_json_error(await anonymous.fetch(path), 404, "not_found")
