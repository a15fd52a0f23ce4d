"""Originals and thumbnails: bytes, headers, ranges, caching, orientation, privacy."""

from __future__ import annotations

import gc
import io
import json
import re
import urllib.parse
import warnings

import pytest
from PIL import Image

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.helpers import (
    API,
    IFD_GPS,
    assert_error,
    assert_json_error,
    blob_path,
    broken_idat_png,
    photo,
    png_bytes,
    sha256,
    thumb_files,
    truncated_png,
    upload_one,
)

IMAGES = f"{API}/images"


def original_url(image_id: str) -> str:
    return f"{IMAGES}/{image_id}/original"


def thumbnail_url(image_id: str, size: str | None = None) -> str:
    return f"{IMAGES}/{image_id}/thumbnail" + (f"?size={size}" if size else "")


# originals -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_original_is_byte_exact_with_its_headers(api: Api) -> None:
    data = photo((300, 200))
    item = await upload_one(api, data, "beach.jpg")
    response = await api.fetch(original_url(item["id"]))
    assert response.code == 200
    assert response.body == data
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["ETag"] == f'"{sha256(data)}"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Accept-Ranges"] == "bytes"
    cache = response.headers["Cache-Control"]
    assert "immutable" in cache and "max-age=31536000" in cache and "public" not in cache
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert 'filename="beach.jpg"' in response.headers["Content-Disposition"]


@pytest.mark.gen_test
async def test_png_is_served_as_png(api: Api) -> None:
    data = png_bytes()
    item = await upload_one(api, data, "screen.jpg")  # a misleading name changes nothing
    assert item["mime"] == "image/png"
    response = await api.fetch(original_url(item["id"]))
    assert response.code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.body == data


@pytest.mark.gen_test
async def test_if_none_match_gives_304(api: Api) -> None:
    data = photo()
    item = await upload_one(api, data)
    etag = f'"{sha256(data)}"'
    for sent in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = await api.fetch(original_url(item["id"]), headers={"If-None-Match": sent})
        assert response.code == 304, sent
        assert response.body == b""
        assert response.headers["ETag"] == etag
    response = await api.fetch(original_url(item["id"]), headers={"If-None-Match": '"other"'})
    assert response.code == 200 and response.body == data


@pytest.mark.gen_test
async def test_an_original_opened_for_an_answer_without_a_body_is_closed(api: Api) -> None:
    # The file is opened (and its size checked) before StaticFileHandler decides the
    # answer; whatever the answer, nothing is left for the garbage collector to close.
    data = photo()
    item = await upload_one(api, data)
    url = original_url(item["id"])
    asked = [
        ("HEAD", {}, 200),
        ("GET", {"If-None-Match": f'"{item["id"]}"'}, 304),
        ("GET", {"Range": f"bytes={len(data)}-"}, 416),
        ("GET", {"X-Download-Id": "x" * 1000}, 400),
        ("GET", {}, 200),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for method, headers, status in asked:
            response = await api.fetch(url, method, headers=headers)
            assert response.code == status, (method, headers)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.gen_test
async def test_range_requests(api: Api) -> None:
    data = photo((200, 100))
    size = len(data)
    item = await upload_one(api, data)
    url = original_url(item["id"])

    response = await api.fetch(url, headers={"Range": "bytes=0-9"})
    assert response.code == 206
    assert response.body == data[:10]
    assert response.headers["Content-Range"] == f"bytes 0-9/{size}"
    assert response.headers["Content-Length"] == "10"
    assert response.headers["ETag"] == f'"{item["id"]}"'

    response = await api.fetch(url, headers={"Range": "bytes=-10"})
    assert response.code == 206
    assert response.body == data[-10:]
    assert response.headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"

    response = await api.fetch(url, headers={"Range": "bytes=100-"})
    assert response.code == 206
    assert response.body == data[100:]

    response = await api.fetch(url, headers={"Range": f"bytes=5-{size * 2}"})
    assert response.code == 206
    assert response.body == data[5:]


@pytest.mark.gen_test
@pytest.mark.parametrize("spec", ["bytes={size}-", "bytes={size}-{bigger}", "bytes=-0"])
async def test_unsatisfiable_range(api: Api, spec: str) -> None:
    data = photo()
    item = await upload_one(api, data)
    header = spec.format(size=len(data), bigger=len(data) + 100)
    response = await api.fetch(original_url(item["id"]), headers={"Range": header})
    assert response.code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    assert_json_error(response, 416, "range_not_satisfiable")
    assert "immutable" not in response.headers.get("Cache-Control", "")
    response = await api.fetch(original_url(item["id"]), "HEAD", headers={"Range": header})
    assert (response.code, response.body) == (416, b"")


@pytest.mark.gen_test
async def test_head_of_an_original(api: Api) -> None:
    data = photo()
    item = await upload_one(api, data)
    response = await api.fetch(original_url(item["id"]), "HEAD")
    assert response.code == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["ETag"] == f'"{item["id"]}"'
    response = await api.fetch(original_url(sha256(b"none")), "HEAD")
    assert response.code == 404 and response.body == b""


def disposition_names(header: str) -> tuple[str, str]:
    """(the ASCII `filename`, the decoded `filename*`) of a Content-Disposition."""
    plain = re.search(r'filename="((?:[^"\\]|\\.)*)"', header)
    exact = re.search(r"filename\*=UTF-8''([^;\s]+)", header)
    assert plain and exact, header
    return plain[1], urllib.parse.unquote(exact[1], errors="strict")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "name", ['照片 "1".jpg', "plain.jpg", "a\\b;c%41.jpg", "Ünïcödé ñame.JPG", "emoji 📷.jpg"]
)
async def test_content_disposition_keeps_the_name(api: Api, name: str) -> None:
    data = photo()
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    boundary = "names-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{escaped}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await api.fetch(
        IMAGES, "POST", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.code == 200, response.body
    item = json.loads(response.body)["items"][0]
    expected = name.replace("\\", "/").rsplit("/", 1)[-1]  # a path is cut to its last part
    assert item["filename"] == expected

    response = await api.fetch(original_url(item["id"]))
    header = response.headers["Content-Disposition"]
    assert header.isascii(), header
    fallback, exact = disposition_names(header)
    assert exact == expected
    assert fallback.isascii() and '"' not in fallback.replace('\\"', "")
    if expected.isascii() and not set(expected) & set('"\\%'):
        assert fallback == expected


@pytest.mark.gen_test
async def test_others_originals_and_thumbnails_are_not_found(api: Api, other_api: Api) -> None:
    item = await upload_one(other_api, photo())
    for url in (original_url(item["id"]), thumbnail_url(item["id"])):
        response = await api.fetch(url)
        assert_json_error(response, 404, "image_not_found")
        assert "Content-Disposition" not in response.headers
        assert (await other_api.fetch(url)).code == 200


# thumbnails ------------------------------------------------------------------


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


@pytest.mark.gen_test(timeout=30)
async def test_thumbnail_sizes(api: Api, services: Services, settings: Settings) -> None:
    item = await upload_one(api, photo((2000, 1500)))
    await services.library.thumbnails.drain()
    # The grid is made as the photo arrives; the preview when it is first asked for.
    assert len(thumb_files(settings, item["id"])) == 1
    expected = {None: (360, 270), "grid": (360, 270), "360": (360, 270), "preview": (1440, 1080)}
    for size, dimensions in expected.items():
        response = await api.fetch(thumbnail_url(item["id"], size))
        assert response.code == 200, size
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        image = decoded(response.body)
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == dimensions, size
    assert len(thumb_files(settings, item["id"])) == 2
    grid = await api.fetch(thumbnail_url(item["id"], "grid"))
    preview = await api.fetch(thumbnail_url(item["id"], "preview"))
    assert grid.headers["ETag"] != preview.headers["ETag"]
    again = await api.fetch(
        thumbnail_url(item["id"], "grid"), headers={"If-None-Match": grid.headers["ETag"]}
    )
    assert again.code == 304


@pytest.mark.gen_test
async def test_small_images_are_not_enlarged(api: Api) -> None:
    item = await upload_one(api, photo((50, 20)))
    response = await api.fetch(thumbnail_url(item["id"], "preview"))
    assert response.code == 200
    assert decoded(response.body).size == (50, 20)


@pytest.mark.gen_test
@pytest.mark.parametrize("size", ["huge", "0", "100", "", "GRID", "grid,preview"])
async def test_bad_thumbnail_size(api: Api, size: str) -> None:
    item = await upload_one(api, photo())
    code, body = await api.json(f"{thumbnail_url(item['id'])}?size={urllib.parse.quote(size)}")
    assert_error(code, body, 400, "invalid_argument")


RED = (230, 20, 20)
BLUE = (20, 20, 230)


def colour_at(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    pixel = image.convert("RGB").getpixel((int(x * (image.width - 1)), int(y * (image.height - 1))))
    assert isinstance(pixel, tuple)
    return pixel[0], pixel[1], pixel[2]


def near(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(colour, expected, strict=True))


@pytest.mark.gen_test
async def test_exif_orientation_6_gives_a_portrait_thumbnail(api: Api, services: Services) -> None:
    # Stored landscape, left half red: turned 90° clockwise the red half is on top.
    data = photo((160, 120), orientation=6, halves=(RED, BLUE))
    item = await upload_one(api, data)
    assert (item["width"], item["height"]) == (120, 160)
    await services.library.thumbnails.drain()
    for size in ("grid", "preview"):
        response = await api.fetch(thumbnail_url(item["id"], size))
        assert response.code == 200
        image = decoded(response.body)
        assert image.size == (120, 160), size
        assert near(colour_at(image, 0.5, 0.1), RED), colour_at(image, 0.5, 0.1)
        assert near(colour_at(image, 0.5, 0.9), BLUE), colour_at(image, 0.5, 0.9)
        assert image.getexif().get(0x0112) in (None, 1)
    assert (await api.fetch(original_url(item["id"]))).body == data


@pytest.mark.gen_test
async def test_thumbnails_carry_no_exif_and_no_location(api: Api, services: Services) -> None:
    data = photo((400, 300), taken="2020:05:06 07:08:09", orientation=1, gps=True)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(IFD_GPS), "the source has GPS"
    item = await upload_one(api, data)
    assert item["gps"] is True
    await services.library.thumbnails.drain()
    for size in ("grid", "preview"):
        response = await api.fetch(thumbnail_url(item["id"], size))
        assert response.code == 200
        image = decoded(response.body)
        assert not image.getexif(), size
        assert "exif" not in image.info and "comment" not in image.info
        assert b"Exif\x00\x00" not in response.body
        assert b"TubeiCam" not in response.body
    original = await api.fetch(original_url(item["id"]))
    assert original.body == data, "the original keeps its EXIF"


@pytest.mark.gen_test
async def test_thumbnail_is_rebuilt_when_its_file_is_gone(
    api: Api, services: Services, settings: Settings
) -> None:
    item = await upload_one(api, photo((800, 600)))
    await services.library.thumbnails.drain()
    assert len(thumb_files(settings, item["id"])) == 1  # the grid; the preview on demand
    first = await api.fetch(thumbnail_url(item["id"], "grid"))
    assert (await api.fetch(thumbnail_url(item["id"], "preview"))).code == 200
    made = thumb_files(settings, item["id"])
    assert len(made) == 2
    for path in made:
        path.unlink()
    again = await api.fetch(thumbnail_url(item["id"], "grid"))
    assert again.code == 200
    assert decoded(again.body).size == decoded(first.body).size == (360, 270)
    preview = await api.fetch(thumbnail_url(item["id"], "preview"))
    assert preview.code == 200
    assert sorted(thumb_files(settings, item["id"])) == sorted(made)
    code, body = await api.json(f"{IMAGES}/{item['id']}")
    assert (code, body["thumbnail"]) == (200, True)


@pytest.mark.gen_test
@pytest.mark.parametrize("make", [truncated_png, broken_idat_png])
async def test_undecodable_image_is_kept_without_thumbnail(
    api: Api, services: Services, settings: Settings, make: object
) -> None:
    assert callable(make)
    data: bytes = make()
    item = await upload_one(api, data, "broken.png")
    assert item["mime"] == "image/png"
    await services.library.thumbnails.drain()
    assert blob_path(settings, item["id"]).read_bytes() == data
    response = await api.fetch(original_url(item["id"]))
    assert response.code == 200 and response.body == data
    for size in ("grid", "preview"):
        code, body = await api.json(thumbnail_url(item["id"], size))
        assert_error(code, body, 404, "no_thumbnail")
    code, body = await api.json(f"{IMAGES}/{item['id']}")
    assert code == 200
    assert body["thumbnail"] is False
    assert body["urls"]["thumbnail"] is None
    assert thumb_files(settings, item["id"]) == []
    code, page = await api.json(IMAGES)
    assert [i["thumbnail"] for i in page["items"]] == [False]
