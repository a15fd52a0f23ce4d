"""The seed's API at /api/v1/service/image, as the original mini-program page uses it."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
from PIL import Image

from server.config import Settings
from tests.conftest import Api, jpeg_bytes, multipart, unique_jpeg
from tests.handlers.helpers import files_in

SEED = "/api/v1/service/image"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A small upload limit, so that the 413 answer can be seen."""
    return Settings(data=tmp_path / "data", gc_interval=3600, max_upload_size=256 * 1024)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (20, 10), (0, 128, 255, 100)).save(out, "PNG")
    return out.getvalue()


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def seed_url(md5: str) -> str:
    return f"{SEED}?{urllib.parse.urlencode({'md5': md5})}"


async def seed_upload(api: Api, data: bytes, filename: str = "tmp_abc.jpg") -> tuple[int, Any]:
    """What `wx.uploadFile({url, filePath, name: 'test'})` sends."""
    return await api.upload([("test", filename, data)], path=SEED)


def error_envelope(response: tornado.httpclient.HTTPResponse, status: int, result: int) -> str:
    """Check an error is both the seed's envelope and the API's error; its code."""
    assert response.code == status, response.body
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert body["result_code"] == result
    assert isinstance(body["message"], str) and body["message"]
    assert "data" in body and body["data"] is None
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"] == body["message"]
    code: str = body["error"]["code"]
    return code


@pytest.mark.gen_test
async def test_upload_answers_in_the_seed_envelope(api: Api) -> None:
    data = unique_jpeg()
    code, body = await seed_upload(api, data)
    assert code == 200, body
    assert body["result_code"] == 0
    assert isinstance(body["message"], str)
    assert body["data"] == [{"name": "test", "md5": md5_of(data)}]

    code, page = await api.json("/api/v1/images")
    assert code == 200
    assert [(i["md5"], i["size"]) for i in page["items"]] == [(md5_of(data), len(data))]

    code, again = await seed_upload(api, data)
    assert code == 200 and again["result_code"] == 0
    assert again["data"] == [{"name": "test", "md5": md5_of(data)}]
    code, page = await api.json("/api/v1/images")
    assert len(page["items"]) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("make", "mime"), [(png_bytes, "image/png"), (unique_jpeg, "image/jpeg")], ids=["png", "jpeg"]
)
async def test_get_returns_the_exact_bytes_with_their_type(api: Api, make: Any, mime: str) -> None:
    data = make()
    code, body = await seed_upload(api, data, "photo.bin")
    assert code == 200, body
    md5 = body["data"][0]["md5"]
    response = await api.fetch(seed_url(md5))
    assert response.code == 200
    assert response.body == data
    assert response.headers["Content-Type"] == mime
    upper = await api.fetch(seed_url(md5.upper()))
    assert upper.code == 200 and upper.body == data


@pytest.mark.gen_test
async def test_delete_sends_the_photo_to_the_trash(api: Api) -> None:
    data, kept = unique_jpeg(), unique_jpeg()
    await seed_upload(api, data)
    await seed_upload(api, kept)
    response = await api.fetch(seed_url(md5_of(data)), "DELETE")
    assert response.code == 200, response.body
    body = json.loads(response.body)
    assert body["result_code"] == 0
    assert isinstance(body["message"], str)

    gone = await api.fetch(seed_url(md5_of(data)))
    assert error_envelope(gone, 404, -1) == "image_not_found"
    code, page = await api.json("/api/v1/images")
    assert [i["md5"] for i in page["items"]] == [md5_of(kept)]
    code, trash = await api.json("/api/v1/trash")
    assert code == 200
    assert [i["md5"] for i in trash["items"]] == [md5_of(data)]
    again = await api.fetch(seed_url(md5_of(data)), "DELETE")
    assert error_envelope(again, 404, -1) == "image_not_found"


@pytest.mark.gen_test
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_unknown_md5_is_404(api: Api, method: str) -> None:
    await seed_upload(api, unique_jpeg())
    response = await api.fetch(seed_url(md5_of(b"never uploaded")), method)
    assert error_envelope(response, 404, -1) == "image_not_found"


MALFORMED = ["../x", "../../etc/passwd", "../secret", "0" * 31, "0" * 33, "g" * 32, "", " " * 32]


@pytest.mark.gen_test
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_malformed_md5_is_400_and_touches_no_file(
    api: Api, settings: Settings, tmp_path: Path, method: str
) -> None:
    # Where the seed's `<md5>.jpg` path join would have led.
    secret = jpeg_bytes(color=(1, 2, 3))
    planted = [tmp_path / "x.jpg", tmp_path / "secret.jpg", settings.data / "x.jpg"]
    planted += [settings.blobs_dir / "x.jpg", settings.data / "secret.jpg"]
    for path in planted:
        path.write_bytes(secret)
    for md5 in MALFORMED:
        response = await api.fetch(seed_url(md5), method)
        assert error_envelope(response, 400, -101) == "invalid_md5", md5
        assert secret not in response.body and b"root:" not in response.body
    missing = await api.fetch(SEED, method)
    assert error_envelope(missing, 400, -101) == "invalid_md5"
    for path in planted:
        assert path.read_bytes() == secret


@pytest.mark.gen_test
async def test_no_token_is_401(api: Api, anonymous: Api) -> None:
    data = unique_jpeg()
    await seed_upload(api, data)
    for method in ("GET", "DELETE"):
        response = await anonymous.fetch(seed_url(md5_of(data)), method)
        assert error_envelope(response, 401, -500) == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body, content_type = multipart([("test", "a.jpg", unique_jpeg())])
    response = await anonymous.fetch(SEED, "POST", body, {"Content-Type": content_type})
    assert error_envelope(response, 401, -500) == "unauthorized"
    forged = Api(api.client, api.base_url, "not-a-token")
    response = await forged.fetch(seed_url(md5_of(data)))
    assert error_envelope(response, 401, -500) == "unauthorized"
    code, page = await api.json("/api/v1/images")
    assert code == 200
    assert [i["md5"] for i in page["items"]] == [md5_of(data)]


@pytest.mark.gen_test
async def test_non_image_upload_is_415_and_nothing_is_kept(api: Api, settings: Settings) -> None:
    body, content_type = multipart([("test", "notes.jpg", b"%PDF-1.4 this is not a photo\n" * 50)])
    response = await api.fetch(SEED, "POST", body, {"Content-Type": content_type})
    assert error_envelope(response, 415, -101) == "unsupported_media_type"
    code, page = await api.json("/api/v1/images")
    assert code == 200 and page["items"] == []
    assert [p for p in settings.blobs_dir.rglob("*") if p.is_file()] == []
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_bad_upload_bodies_are_400_envelopes(api: Api) -> None:
    body, content_type = multipart([], fields={"just": "a field"})
    response = await api.fetch(SEED, "POST", body, {"Content-Type": content_type})
    assert error_envelope(response, 400, -101) == "no_files"
    response = await api.fetch(SEED, "POST", b"raw bytes", {"Content-Type": "image/jpeg"})
    assert error_envelope(response, 400, -101) == "bad_multipart"


@pytest.mark.gen_test
async def test_unsupported_method_is_an_envelope(api: Api) -> None:
    response = await api.fetch(SEED, "PUT", b"")
    assert error_envelope(response, 405, -101) == "method_not_allowed"


@pytest.mark.gen_test
async def test_another_users_md5_is_404(api: Api, other_api: Api) -> None:
    data = unique_jpeg()
    await seed_upload(api, data)
    for method in ("GET", "DELETE"):
        response = await other_api.fetch(seed_url(md5_of(data)), method)
        assert error_envelope(response, 404, -1) == "image_not_found"
    response = await api.fetch(seed_url(md5_of(data)))
    assert response.code == 200 and response.body == data


@pytest.mark.gen_test
async def test_too_large_upload_is_413_envelope(api: Api) -> None:
    body, content_type = multipart([("test", "big.jpg", b"\xff\xd8\xff" + b"\0" * 300_000)])
    response = await api.fetch(SEED, "POST", body, {"Content-Type": content_type})
    assert error_envelope(response, 413, -101) == "payload_too_large"
    code, page = await api.json("/api/v1/images")
    assert code == 200 and page["items"] == []
