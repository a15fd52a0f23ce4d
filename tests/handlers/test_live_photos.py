"""Live Photos through the real server: a still (its Apple maker note's identifier) and a
MOV (its QuickTime content identifier) uploaded apart, in either order and by either
transport, are one item in the uploader's library, each half still its own original."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from PIL import Image

from tests.conftest import Api
from tests.handlers.helpers import assert_json_error, sha256
from tests.handlers.test_videos import TRANSPORTS, assert_described_by_the_spec
from tests.imaging.test_motion import _apple_note
from tests.imaging.videos import frame_image, make_video

pillow_heif.register_heif_opener()

IMAGES = "/api/v1/images"
ID = "5A7D3F4E-1B2C-4D5E-8F90-0A1B2C3D4E5F"


def live_still(identifier: str = ID, fmt: str = "JPEG") -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x927C] = _apple_note(identifier.encode())
    out = io.BytesIO()
    frame_image(64, 48).save(out, fmt, exif=exif)
    return out.getvalue()


def live_mov(tmp_path: Path, identifier: str = ID) -> bytes:
    metadata = {"com.apple.quicktime.content.identifier": identifier}
    return make_video(tmp_path / "IMG_0001.MOV", fmt="mov", metadata=metadata).read_bytes()


async def item_of(api: Api, image_id: str) -> dict[str, Any]:
    code, item = await api.json(f"{IMAGES}/{image_id}")
    assert code == 200, item
    return dict(item)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("still_first", [True, False], ids=["still-first", "mov-first"])
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_live_photo_is_paired_whichever_half_comes_first(
    api: Api, anonymous: Api, tmp_path: Path, still_first: bool, transport: str
) -> None:
    still, mov = live_still(), live_mov(tmp_path)
    halves = [(still, "IMG_0001.JPG"), (mov, "IMG_0001.MOV")]
    if not still_first:
        halves.reverse()
    for data, name in halves:
        code, item = await TRANSPORTS[transport](api, data, name)
        assert code == 200, item
        assert item["id"] == sha256(data)
    photo = await item_of(api, sha256(still))
    video = await item_of(api, sha256(mov))
    assert (photo["kind"], photo["mime"], photo["live_still"]) == ("live", "image/jpeg", None)
    assert photo["urls"]["live_video"] == f"{IMAGES}/{sha256(mov)}/original"
    assert (video["kind"], video["live_still"]) == ("video", sha256(still))
    assert video["urls"]["live_video"] is None
    assert_described_by_the_spec(photo)
    assert_described_by_the_spec(video)
    # Both halves listed, each its own byte-exact original.
    code, page = await api.json(IMAGES)
    assert code == 200 and {i["id"] for i in page["items"]} == {sha256(still), sha256(mov)}
    assert (await api.fetch(photo["urls"]["original"])).body == still
    assert (await api.fetch(photo["urls"]["live_video"])).body == mov
    # The still's signed live_video plays the MOV without a token, with ranges.
    signed = photo["signed_urls"]["live_video"]
    played = await anonymous.fetch(signed)
    assert played.code == 200 and played.body == mov
    assert played.headers["Content-Type"] == "video/quicktime"
    ranged = await anonymous.fetch(signed, headers={"Range": "bytes=0-1"})
    assert ranged.code == 206 and ranged.body == mov[:2]


@pytest.mark.gen_test(timeout=60)
async def test_the_pair_is_the_uploaders_own_and_ends_with_the_trash(
    api: Api, other_api: Api, tmp_path: Path
) -> None:
    still, mov = live_still(), live_mov(tmp_path)
    code, _ = await TRANSPORTS["multipart"](other_api, mov, "IMG_0001.MOV")
    assert code == 200
    code, photo = await TRANSPORTS["multipart"](api, still, "IMG_0001.JPG")
    assert code == 200
    assert photo["kind"] == "photo" and photo["urls"]["live_video"] is None  # not alice's MOV
    code, _ = await TRANSPORTS["multipart"](api, mov, "IMG_0001.MOV")
    assert code == 200
    assert (await item_of(api, sha256(still)))["kind"] == "live"
    assert (await item_of(other_api, sha256(mov)))["live_still"] is None  # bob has no still
    code, _ = await api.json(f"{IMAGES}/{sha256(mov)}", "DELETE")
    assert code == 200
    alone = await item_of(api, sha256(still))
    assert alone["kind"] == "photo" and alone["urls"]["live_video"] is None
    assert alone["signed_urls"]["live_video"] is None


@pytest.mark.gen_test(timeout=60)
async def test_halves_with_other_identifiers_stay_apart(api: Api, tmp_path: Path) -> None:
    code, photo = await TRANSPORTS["multipart"](api, live_still("AAAA-1"), "IMG_1.JPG")
    assert code == 200
    code, video = await TRANSPORTS["multipart"](api, live_mov(tmp_path, "BBBB-2"), "IMG_2.MOV")
    assert code == 200
    assert (await item_of(api, photo["id"]))["kind"] == "photo"
    assert (await item_of(api, video["id"]))["live_still"] is None
    assert_json_error(
        await api.fetch(f"{IMAGES}/{photo['id']}/video?variant=motion"), 404, "no_motion_video"
    )


@pytest.mark.gen_test(timeout=60)
async def test_a_heic_still_pairs_too(api: Api, tmp_path: Path) -> None:
    still = live_still(fmt="HEIF")
    code, video = await TRANSPORTS["tus"](api, live_mov(tmp_path), "IMG_0002.MOV")
    assert code == 200 and video["live_still"] is None
    code, photo = await TRANSPORTS["tus"](api, still, "IMG_0002.HEIC")
    assert code == 200, photo
    assert (photo["kind"], photo["format"]) == ("live", "HEIF")
    assert photo["urls"]["live_video"] == f"{IMAGES}/{video['id']}/original"
    assert (await item_of(api, video["id"]))["live_still"] == photo["id"]
