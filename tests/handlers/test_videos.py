"""Videos kept like photos, through the real server: multipart and tus alike.

Each video is made here with PyAV (tests/imaging/videos.py): every frame's top half red
and its bottom half blue, so a poster's pixels say whether it came out upright.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image

from server.services import Services
from tests.conftest import Api, multipart
from tests.handlers.helpers import photo, sha256
from tests.handlers.tus_client import new_upload, patch
from tests.imaging.videos import BLUE, RED, bomb_mp4, make_video, patch_dimensions
from tests.test_openapi import load_spec

IMAGES = "/api/v1/images"
SEED = "/api/v1/service/image"
CREATED = "2024-05-01T10:00:00.000000Z"
LOCATION = "+31.2304+121.4737/"


def video(tmp_path: Path, name: str, **kwargs: Any) -> bytes:
    return make_video(tmp_path / name, **kwargs).read_bytes()


async def by_multipart(api: Api, data: bytes, filename: str) -> tuple[int, Any]:
    code, body = await api.upload([("file", filename, data)])
    return code, body["items"][0] if code == 200 else body


async def by_tus(api: Api, data: bytes, filename: str) -> tuple[int, Any]:
    url = await new_upload(api, data, filename)
    half = len(data) // 2
    for start, end in ((0, half), (half, len(data))):
        response = await patch(api, url, start, data[start:end])
        if response.code != 204:
            return response.code, json.loads(response.body)
    code, listed = await api.json(IMAGES)
    assert code == 200
    return 200, next(i for i in listed["items"] if i["id"] == sha256(data))


TRANSPORTS = {"multipart": by_multipart, "tus": by_tus}


def assert_described_by_the_spec(item: dict[str, Any]) -> None:
    spec = load_spec()
    schema = {"$ref": "#/components/schemas/Image", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(item)


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 60 for a, b in zip(pixel, colour, strict=False))


async def poster(api: Api, item: dict[str, Any], size: str = "grid") -> Image.Image:
    response = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size={size}")
    assert response.code == 200, response.body
    assert response.headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.body))
    image.load()
    return image


async def assert_served_as_a_video_element_asks(
    api: Api, item: dict[str, Any], data: bytes
) -> None:
    """Safari (and iOS's player, which WeChat's `<video>` is there) asks for `bytes=0-1`
    first, then for pieces as it seeks; Chrome asks for `bytes=0-`, which is the whole
    file: 200 with `Accept-Ranges`, as Tornado answers it and Chrome takes it."""
    original = f"{IMAGES}/{item['id']}/original"
    whole = await api.fetch(original)
    assert whole.code == 200 and whole.body == data
    assert whole.headers["Content-Type"] == item["mime"]
    assert whole.headers["Accept-Ranges"] == "bytes"
    first = await api.fetch(original, headers={"Range": "bytes=0-1"})
    assert first.code == 206 and first.body == data[:2]
    assert first.headers["Content-Range"] == f"bytes 0-1/{len(data)}"
    assert first.headers["Content-Type"] == item["mime"]
    start, end = len(data) // 3, len(data) // 3 + 99
    piece = await api.fetch(original, headers={"Range": f"bytes={start}-{end}"})
    assert piece.code == 206 and piece.body == data[start : end + 1]
    rest = await api.fetch(original, headers={"Range": f"bytes={start}-"})
    assert rest.code == 206 and rest.body == data[start:]
    tail = await api.fetch(original, headers={"Range": "bytes=-64"})
    assert tail.code == 206 and tail.body == data[-64:]
    opening = await api.fetch(original, headers={"Range": "bytes=0-"})
    assert opening.code == 200 and opening.body == data
    assert opening.headers["Accept-Ranges"] == "bytes"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_an_h264_mp4_is_kept_byte_exact_with_its_facts_and_an_upright_poster(
    api: Api, services: Services, tmp_path: Path, transport: str
) -> None:
    data = video(
        tmp_path,
        "clip.mp4",
        size=(64, 48),
        frames=15,
        rate=10,
        rotation=90,
        metadata={"creation_time": CREATED, "location": LOCATION},
    )
    code, item = await TRANSPORTS[transport](api, data, "clip.mp4")
    assert code == 200, item
    assert (item["id"], item["size"]) == (sha256(data), len(data))
    assert (item["kind"], item["mime"], item["format"]) == ("video", "video/mp4", "MP4")
    assert (item["width"], item["height"]) == (48, 64)  # a quarter turn: shown upright
    assert item["duration"] == pytest.approx(1.5, abs=0.11)
    assert (item["codec"], item["gps"], item["orientation"]) == ("h264", True, None)
    assert item["taken_at"] == "2024-05-01T10:00:00+00:00"
    assert (item["camera"], item["exif"]) == (None, None)
    assert item["thumbnail"] is True and item["urls"]["preview"] is not None
    assert_described_by_the_spec(item)

    await assert_served_as_a_video_element_asks(api, item, data)
    await services.library.thumbnails.drain()
    # Counter-clockwise, as FFmpeg's display matrix: the top (red) comes to the left.
    for size in ("grid", "preview"):
        image = (await poster(api, item, size)).convert("RGB")
        assert image.size == (48, 64)
        left, right = image.getpixel((4, 32)), image.getpixel((43, 32))
        assert isinstance(left, tuple) and isinstance(right, tuple)
        assert near(left, RED) and near(right, BLUE), (left, right)


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize(
    ("transport", "name", "made", "facts"),
    [
        ("tus", "clip.webm", {"fmt": "webm", "codec": "libvpx-vp9"}, ("WEBM", "video/webm", "vp9")),
        (
            "multipart",
            "IMG_1.MOV",
            {"fmt": "mov", "codec": "libx265"},
            ("MOV", "video/quicktime", "hevc"),
        ),
        ("tus", "clip.3gp", {"fmt": "3gp", "size": (176, 144)}, ("3GP", "video/3gpp", "h264")),
    ],
    ids=["webm-vp9", "mov-hevc", "3gp-h264"],
)
async def test_every_accepted_container_is_kept_with_a_poster(
    api: Api,
    services: Services,
    tmp_path: Path,
    transport: str,
    name: str,
    made: dict[str, Any],
    facts: tuple[str, str, str],
) -> None:
    data = video(tmp_path, name, frames=4, **made)
    code, item = await TRANSPORTS[transport](api, data, name)
    assert code == 200, item
    assert (item["kind"], item["format"], item["mime"], item["codec"]) == ("video", *facts)
    assert item["duration"] is not None and 0 < item["duration"] < 1
    assert item["gps"] is False and item["thumbnail"] is True
    assert_described_by_the_spec(item)
    await assert_served_as_a_video_element_asks(api, item, data)
    image = (await poster(api, item)).convert("RGB")
    top, bottom = (
        image.getpixel((image.width // 2, 2)),
        image.getpixel((image.width // 2, image.height - 3)),
    )
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert near(top, RED) and near(bottom, BLUE)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_truncated_video_is_kept_without_a_poster(
    api: Api, services: Services, tmp_path: Path, transport: str
) -> None:
    whole = video(tmp_path, "whole.mp4", frames=20)
    data = whole[: whole.index(b"moov") - 16]  # cut before its movie header, as a crash leaves it
    code, item = await TRANSPORTS[transport](api, data, "cut.mp4")
    assert code == 200, item
    assert (item["kind"], item["mime"], item["thumbnail"]) == ("video", "video/mp4", False)
    assert item["urls"]["thumbnail"] is None and item["urls"]["preview"] is None
    assert_described_by_the_spec(item)
    await services.library.thumbnails.drain()
    assert services.library.thumbnails.outcomes.total() == 0  # nothing was decoded
    response = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail")
    assert response.code == 404
    assert json.loads(response.body)["error"]["code"] == "no_thumbnail"
    assert (await api.fetch(f"{IMAGES}/{item['id']}/original")).body == data


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize(
    "data",
    [
        os.urandom(64 * 1024),
        b"this is not a video, only named like one\n" * 100,
        # An MP4's first box, and nothing a movie is made of after it.
        bomb_mp4()[:32] + b"\x00\x00\x00\x08free" * 100,
        # An MP4 that holds no video at all: sound alone is not what Tubei keeps.
        b"",
    ],
    ids=["random", "text", "ftyp-only", "audio-only"],
)
async def test_a_file_named_mp4_that_is_not_a_video_is_refused(
    api: Api, tmp_path: Path, transport: str, data: bytes
) -> None:
    if not data:
        data = audio_only_mp4(tmp_path / "sound.mp4")
    code, body = await TRANSPORTS[transport](api, data, "clip.mp4")
    assert code == 415, body
    assert body["error"]["code"] == "unsupported_media_type"
    code, listed = await api.json(IMAGES)
    assert (code, listed["items"]) == (200, [])


def audio_only_mp4(path: Path) -> bytes:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 8000
        for n in range(4):
            frame.pts = n * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize(
    "declared",
    [{"width": 60000, "height": 60000}, {"duration": 10 * 365 * 24 * 3600}, {"tracks": 3000}],
    ids=["frame", "duration", "streams"],
)
async def test_a_video_bomb_is_kept_never_decoded_and_the_server_keeps_serving(
    api: Api, other_api: Api, services: Services, tmp_path: Path, declared: dict[str, int]
) -> None:
    data = bomb_mp4(**declared)
    code, item = await by_multipart(api, data, "bomb.mp4")
    assert code == 200, item
    assert (item["kind"], item["thumbnail"], item["urls"]["thumbnail"]) == ("video", False, None)
    await services.library.thumbnails.drain()
    assert services.library.thumbnails.outcomes.total() == 0
    assert (await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size=preview")).code == 404
    # Everyone else is still served, and a photo still gets its thumbnail.
    real = patch_dimensions(video(tmp_path, "real.mp4"), 60000, 60000)
    code, patched = await by_multipart(other_api, real, "patched.mp4")
    assert (code, patched["thumbnail"]) == (200, False)
    code, listed = await other_api.json(IMAGES)
    assert code == 200 and [i["id"] for i in listed["items"]] == [patched["id"]]


def frames_zeroed(data: bytes) -> bytes:
    """The same movie header over media data that is all zeros: its headers read as a
    complete video, and not one frame decodes."""
    out = bytearray(data)
    at = out.index(b"mdat") - 4
    size = int.from_bytes(out[at : at + 4], "big")
    out[at + 8 : at + size] = bytes(size - 8)
    return bytes(out)


@pytest.mark.gen_test(timeout=60)
async def test_a_video_that_yields_no_frame_is_settled_without_a_poster_at_once(
    api: Api, services: Services, tmp_path: Path
) -> None:
    data = frames_zeroed(video(tmp_path, "v.mp4", frames=20))
    code, item = await by_multipart(api, data, "zeros.mp4")
    assert code == 200, item
    assert item["kind"] == "video" and item["thumbnail"] is True  # not known yet
    thumbnails = services.library.thumbnails
    await thumbnails.drain()
    assert thumbnails.outcomes == {"undecodable": 1}  # one attempt, settled: no retry
    code, found = await api.json(f"{IMAGES}/{item['id']}")
    assert code == 200
    assert (found["thumbnail"], found["urls"]["thumbnail"]) == (False, None)
    response = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size=preview")
    assert response.code == 404
    assert thumbnails.outcomes == {"undecodable": 1}  # and no decode on demand either
    assert (await api.fetch(f"{IMAGES}/{item['id']}/original")).body == data


APPLE = {
    "creation_time": "2024-05-01T10:20:30.000000Z",
    "com.apple.quicktime.creationdate": "2024-05-01T18:20:30+0800",
    "com.apple.quicktime.location.ISO6709": "+31.2304+121.4737+004.000/",
}


@pytest.mark.gen_test(timeout=60)
async def test_an_iphone_video_keeps_its_local_time_and_takes_its_place_in_the_library(
    api: Api, services: Services, tmp_path: Path
) -> None:
    """An HEVC MOV turned as an iPhone held upright writes it, with Apple's tags."""
    data = video(tmp_path, "IMG_0001.MOV", fmt="mov", codec="libx265", rotation=270, metadata=APPLE)
    code, item = await by_tus(api, data, "IMG_0001.MOV")
    assert code == 200, item
    assert (item["format"], item["codec"], item["gps"]) == ("MOV", "hevc", True)
    assert (item["width"], item["height"]) == (48, 64)
    assert item["taken_at"] == "2024-05-01T18:20:30+08:00"  # Apple's local time, its offset
    earlier = photo(taken="2024:05:01 18:00:00", offset="+08:00")
    later = photo(taken="2024:05:01 18:40:00", offset="+08:00")
    code, _ = await api.upload([("a", "a.jpg", earlier), ("b", "b.jpg", later)])
    assert code == 200
    code, listed = await api.json(IMAGES)
    order = [i["id"] for i in listed["items"]]
    assert order == [sha256(later), item["id"], sha256(earlier)]  # by when each was taken
    # A quarter turn clockwise (270 counter-clockwise): the top (red) comes to the right.
    image = (await poster(api, item)).convert("RGB")
    assert image.size == (48, 64)
    left, right = image.getpixel((4, 32)), image.getpixel((43, 32))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert near(left, BLUE) and near(right, RED), (left, right)


@pytest.mark.gen_test(timeout=60)
async def test_the_seed_api_keeps_a_video_too(api: Api, tmp_path: Path) -> None:
    data = video(tmp_path, "v.mp4")
    body, content_type = multipart([("test", "tmp_abc.mp4", data)])
    response = await api.fetch(SEED, "POST", body, {"Content-Type": content_type})
    assert response.code == 200, response.body
    envelope = json.loads(response.body)
    assert envelope["result_code"] == 0
    assert envelope["data"] == [{"name": "test", "md5": hashlib.md5(data).hexdigest()}]
    fetched = await api.fetch(f"{SEED}?md5={hashlib.md5(data).hexdigest()}")
    assert fetched.code == 200 and fetched.body == data
    assert fetched.headers["Content-Type"] == "video/mp4"
