"""Motion photos through the real server: a JPEG (or HEIC) with its MP4 appended is one
byte-exact original, listed as `kind: motion`, whose video part is served alone (Range,
ETag, 304, a signed URL) from within the stored original, locally and from a store."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import av
import pillow_heif
import pytest
from PIL import Image

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.helpers import assert_json_error, blob_path, sha256
from tests.handlers.test_videos import TRANSPORTS, assert_described_by_the_spec
from tests.imaging.test_motion import DIRECTORY, MICRO_VIDEO
from tests.imaging.videos import frame_image, jpeg_bytes, make_video

pillow_heif.register_heif_opener()

IMAGES = "/api/v1/images"


def motion_photo(tmp_path: Path, template: bytes = MICRO_VIDEO) -> tuple[bytes, bytes]:
    """(the whole file, its video part): a Pillow JPEG whose XMP says where the MP4 is."""
    video = make_video(tmp_path / "part.mp4", frames=6).read_bytes()
    return jpeg_bytes(xmp=template % len(video)) + video, video


def heic_motion_photo(tmp_path: Path) -> tuple[bytes, bytes]:
    video = make_video(tmp_path / "part.mp4", frames=6).read_bytes()
    out = io.BytesIO()
    frame_image(64, 48).save(out, "HEIF", xmp=MICRO_VIDEO % len(video))
    return out.getvalue() + video, video


def plays(tmp_path: Path, data: bytes) -> int:
    """How many frames PyAV decodes from `data` as a file."""
    path = tmp_path / "served.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def motion_part(api: Api, item: dict[str, Any], **headers: str) -> Any:
    return await api.fetch(item["urls"]["motion_video"], headers=headers or None)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("template", [MICRO_VIDEO, DIRECTORY], ids=["MicroVideo", "Container"])
async def test_a_motion_photo_is_one_original_whose_video_part_plays(
    api: Api, services: Services, tmp_path: Path, transport: str, template: bytes
) -> None:
    data, video = motion_photo(tmp_path, template)
    code, item = await TRANSPORTS[transport](api, data, "PXL_20240501_motion.jpg")
    assert code == 200, item
    assert (item["id"], item["size"]) == (sha256(data), len(data))
    assert (item["kind"], item["mime"], item["format"]) == ("motion", "image/jpeg", "JPEG")
    assert (item["width"], item["height"], item["duration"]) == (64, 48, None)
    base = f"{IMAGES}/{item['id']}"
    assert item["urls"]["motion_video"] == f"{base}/video?variant=motion"
    assert item["signed_urls"]["motion_video"] is not None
    assert_described_by_the_spec(item)

    original = await api.fetch(item["urls"]["original"])
    assert original.code == 200 and original.body == data  # the one original, as sent
    part = await motion_part(api, item)
    assert part.code == 200 and part.body == video
    assert part.headers["Content-Type"] == "video/mp4"
    assert part.headers["Accept-Ranges"] == "bytes"
    assert part.headers["Content-Length"] == str(len(video))
    assert "motion.mp4" in part.headers["Content-Disposition"]
    assert plays(tmp_path, part.body) == 6
    # The thumbnail is the still's: the same JPEG the still alone would give.
    await services.library.thumbnails.drain()
    thumb = await api.fetch(item["urls"]["thumbnail"])
    assert thumb.code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.body)) as img:
        assert img.size == (64, 48)


@pytest.mark.gen_test(timeout=60)
async def test_the_video_part_takes_ranges_etags_and_304_within_itself(
    api: Api, tmp_path: Path
) -> None:
    data, video = motion_photo(tmp_path)
    code, item = await TRANSPORTS["multipart"](api, data, "motion.jpg")
    assert code == 200, item
    first = await motion_part(api, item, Range="bytes=0-1")
    assert first.code == 206 and first.body == video[:2]
    assert first.headers["Content-Range"] == f"bytes 0-1/{len(video)}"
    start, end = len(video) // 3, len(video) // 3 + 99
    piece = await motion_part(api, item, Range=f"bytes={start}-{end}")
    assert piece.code == 206 and piece.body == video[start : end + 1]
    tail = await motion_part(api, item, Range="bytes=-64")
    assert tail.code == 206 and tail.body == video[-64:]
    etag = piece.headers["ETag"]
    assert etag != f'"{item["id"]}"'  # not the original's: other bytes
    again = await motion_part(api, item, **{"If-None-Match": etag})
    assert again.code == 304 and again.body == b""
    outside = await motion_part(api, item, Range=f"bytes={len(video)}-")
    assert_json_error(outside, 416, "range_not_satisfiable")
    assert outside.headers["Content-Range"] == f"bytes */{len(video)}"
    head = await api.fetch(item["urls"]["motion_video"], "HEAD")
    assert head.code == 200 and head.headers["Content-Length"] == str(len(video))


@pytest.mark.gen_test(timeout=60)
async def test_the_video_part_plays_from_a_signed_url_without_a_token(
    api: Api, anonymous: Api, other_api: Api, tmp_path: Path
) -> None:
    data, video = motion_photo(tmp_path)
    code, item = await TRANSPORTS["multipart"](api, data, "motion.jpg")
    assert code == 200, item
    signed = item["signed_urls"]["motion_video"]
    part = await anonymous.fetch(signed)
    assert part.code == 200 and part.body == video
    ranged = await anonymous.fetch(signed, headers={"Range": "bytes=10-19"})
    assert ranged.code == 206 and ranged.body == video[10:20]
    # Signed for the video part only: the original's URL with its signature is refused.
    query = signed.partition("?")[2].replace("variant=motion&", "")
    assert_json_error(
        await anonymous.fetch(f"{item['urls']['original']}?{query}"), 403, "signed_url_invalid"
    )
    assert_json_error(await anonymous.fetch(item["urls"]["motion_video"]), 401, "unauthorized")
    assert_json_error(await other_api.fetch(item["urls"]["motion_video"]), 404, "image_not_found")


@pytest.mark.gen_test(timeout=60)
async def test_a_heic_motion_photo(api: Api, tmp_path: Path) -> None:
    data, video = heic_motion_photo(tmp_path)
    code, item = await TRANSPORTS["tus"](api, data, "motion.heic")
    assert code == 200, item
    assert (item["kind"], item["format"]) == ("motion", "HEIF")
    part = await motion_part(api, item)
    assert part.code == 200 and part.body == video


@pytest.mark.gen_test(timeout=60)
async def test_an_offset_pointing_at_no_video_keeps_a_plain_photo(api: Api, tmp_path: Path) -> None:
    data = jpeg_bytes(xmp=MICRO_VIDEO % 500) + bytes(500)
    code, item = await TRANSPORTS["multipart"](api, data, "lying.jpg")
    assert code == 200, item
    assert (item["kind"], item["size"]) == ("photo", len(data))
    assert item["urls"]["motion_video"] is None and item["signed_urls"]["motion_video"] is None
    assert_described_by_the_spec(item)
    assert (await api.fetch(item["urls"]["original"])).body == data
    response = await api.fetch(f"{IMAGES}/{item['id']}/video?variant=motion")
    assert response.code == 404
    assert json.loads(response.body)["error"]["code"] == "no_motion_video"
    # Too far back (before the file's start): a plain photo too.
    far = jpeg_bytes(xmp=MICRO_VIDEO % 10**9)
    code, item = await TRANSPORTS["multipart"](api, far, "far.jpg")
    assert code == 200 and item["kind"] == "photo"


@pytest.mark.gen_test(timeout=60)
async def test_a_video_has_no_motion_part(api: Api, tmp_path: Path) -> None:
    data = make_video(tmp_path / "clip.mp4").read_bytes()
    code, item = await TRANSPORTS["multipart"](api, data, "clip.mp4")
    assert code == 200 and item["kind"] == "video" and item["urls"]["motion_video"] is None
    response = await api.fetch(f"{IMAGES}/{item['id']}/video?variant=motion")
    assert_json_error(response, 404, "no_motion_video")
    response = await api.fetch(f"{IMAGES}/{item['id']}/video?variant=bogus")
    assert_json_error(response, 400, "invalid_argument")


@pytest.mark.gen_test(timeout=60)
async def test_a_damaged_original_serves_no_video_part(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    data, _ = motion_photo(tmp_path)
    code, item = await TRANSPORTS["multipart"](api, data, "motion.jpg")
    assert code == 200, item
    path = blob_path(settings, item["id"])
    path.chmod(0o644)
    path.write_bytes(data[: len(data) - 10])  # cut short inside its video
    assert_json_error(await motion_part(api, item), 410, "image_damaged")
    _, again = await api.json(f"{IMAGES}/{item['id']}")
    assert again["damaged"] is True
