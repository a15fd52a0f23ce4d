"""Damaged originals: never served as if fine, shown as damaged, healed by uploading again."""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import pytest

from server.catalog import Damage, ImageRecord
from server.config import Settings
from server.services import Services
from server.services.scrub import Scrubber
from tests.conftest import Api
from tests.handlers.helpers import (
    API,
    assert_json_error,
    blob_path,
    ids_in,
    photo,
    sha256,
    thumb_files,
    upload_one,
)
from tests.handlers.tus_client import new_upload, send_all

IMAGES = f"{API}/images"
SEED = f"{API}/service/image"


def rot(settings: Settings, data: bytes) -> bytes:
    """Flip one bit of the stored file (same size, other bytes); the bytes now stored."""
    path = blob_path(settings, sha256(data))
    rotten = bytearray(path.read_bytes())
    rotten[len(rotten) // 2] ^= 0x04
    path.write_bytes(rotten)
    return bytes(rotten)


async def scrub(services: Services) -> None:
    await Scrubber(services.catalog, services.store, services.library.thumbnails).run()


async def assert_damaged(api: Api, data: bytes) -> None:
    """410 `image_damaged` for the bytes, however asked; the Image says damaged."""
    url = f"{IMAGES}/{sha256(data)}/original"
    for headers in ({}, {"Range": "bytes=0-99"}, {"If-None-Match": f'"{sha256(data)}"'}):
        response = await api.fetch(url, headers=headers)
        assert_json_error(response, 410, "image_damaged")
        assert "upload the photo again" in json.loads(response.body)["error"]["message"].lower()
        assert "immutable" not in response.headers.get("Cache-Control", "")
    head = await api.fetch(url, "HEAD")
    assert (head.code, head.body) == (410, b"")
    code, item = await api.json(f"{IMAGES}/{sha256(data)}")
    assert code == 200 and item["damaged"] is True, item
    code, page = await api.json(IMAGES)
    assert [i.get("damaged") for i in page["items"] if i["id"] == sha256(data)] == [True]


async def assert_served(api: Api, data: bytes) -> None:
    response = await api.fetch(f"{IMAGES}/{sha256(data)}/original")
    assert response.code == 200, response.body
    assert response.body == data
    code, item = await api.json(f"{IMAGES}/{sha256(data)}")
    assert code == 200 and "damaged" not in item, item


@pytest.mark.gen_test
async def test_a_scrubbed_mismatch_is_410_everywhere_and_its_thumbnails_stay(
    api: Api, services: Services, settings: Settings
) -> None:
    data = photo((300, 200))
    await upload_one(api, data, "IMG_0042.jpg")
    await services.library.thumbnails.drain()
    rot(settings, data)
    await scrub(services)
    await assert_damaged(api, data)
    # Thumbnails were made from the good bytes: still shown, so the gallery can say which.
    thumbnail = await api.fetch(f"{IMAGES}/{sha256(data)}/thumbnail")
    assert thumbnail.code == 200 and thumbnail.headers["Content-Type"] == "image/jpeg"
    # The seed's API says so in its own envelope.
    md5 = hashlib.md5(data).hexdigest()
    seed = await api.fetch(f"{SEED}?{urllib.parse.urlencode({'md5': md5})}")
    assert seed.code == 410
    body = json.loads(seed.body)
    assert body["result_code"] == -2 and body["error"]["code"] == "image_damaged", body
    assert body["data"] is None


@pytest.mark.gen_test
async def test_a_file_gone_missing_is_found_when_asked_for(
    api: Api, services: Services, settings: Settings
) -> None:
    data = photo()
    await upload_one(api, data)
    await services.library.thumbnails.drain()  # made before the file goes
    blob_path(settings, sha256(data)).unlink()
    code, item = await api.json(f"{IMAGES}/{sha256(data)}")
    assert code == 200 and "damaged" not in item, "not known yet"
    await assert_damaged(api, data)  # the first request finds it, and marks it
    record = await services.catalog.get_blob(sha256(data))
    assert record is not None and record.damage == "missing"


@pytest.mark.gen_test
async def test_a_file_of_the_wrong_size_is_found_when_asked_for(
    api: Api, services: Services, settings: Settings
) -> None:
    data = photo()
    await upload_one(api, data)
    await services.library.thumbnails.drain()  # made before the file goes
    path = blob_path(settings, sha256(data))
    path.write_bytes(data[: len(data) // 2])  # truncated
    await assert_damaged(api, data)
    record = await services.catalog.get_blob(sha256(data))
    assert record is not None and record.damage == "mismatch"


@pytest.mark.gen_test
async def test_a_thumbnail_asked_of_a_missing_original_is_410(
    api: Api, services: Services, settings: Settings
) -> None:
    data = photo()
    await upload_one(api, data)
    await services.library.thumbnails.drain()
    for path in thumb_files(settings, sha256(data)):
        path.unlink()
    blob_path(settings, sha256(data)).unlink()
    response = await api.fetch(f"{IMAGES}/{sha256(data)}/thumbnail?size=preview")
    assert_json_error(response, 410, "image_damaged")
    record = await services.catalog.get_blob(sha256(data))
    assert record is not None and record.damage == "missing"
    # Known damaged now: no thumbnail is made from it, and the answer stays the same.
    response = await api.fetch(f"{IMAGES}/{sha256(data)}/thumbnail")
    assert_json_error(response, 410, "image_damaged")
    assert thumb_files(settings, sha256(data)) == []


@pytest.mark.gen_test
async def test_uploading_again_heals_a_missing_original(
    api: Api, services: Services, settings: Settings
) -> None:
    data = photo()
    await upload_one(api, data, "kept.jpg")
    await services.library.thumbnails.drain()  # made before the file goes
    blob_path(settings, sha256(data)).unlink()
    await scrub(services)
    await assert_damaged(api, data)
    item = await upload_one(api, data, "again.jpg")
    assert item["duplicate"] is True and "damaged" not in item
    await assert_served(api, data)
    code, again = await api.json(f"{IMAGES}/{sha256(data)}")
    # Healing changes the bytes on disk, nothing else.
    assert code == 200 and again["filename"] == "kept.jpg"
    assert await ids_in(api) == [sha256(data)]


@pytest.mark.gen_test(timeout=20)
async def test_uploading_again_by_tus_heals_a_mismatched_original(
    api: Api, services: Services, settings: Settings
) -> None:
    data = photo((400, 300))
    await upload_one(api, data)
    rot(settings, data)
    await scrub(services)
    await assert_damaged(api, data)
    last = await send_all(api, await new_upload(api, data), data)
    assert last.headers["Tubei-Image-Id"] == sha256(data)
    assert last.headers["Tubei-Duplicate"] == "true"
    assert blob_path(settings, sha256(data)).read_bytes() == data
    await assert_served(api, data)
    record = await services.catalog.get_blob(sha256(data))
    assert record is not None and record.damage is None


@pytest.mark.gen_test
async def test_uploading_again_mends_a_mismatch_nobody_had_noticed(
    api: Api, settings: Settings
) -> None:
    data = photo()
    await upload_one(api, data)
    rotten = rot(settings, data)
    assert (await api.fetch(f"{IMAGES}/{sha256(data)}/original")).body == rotten, (
        "same size: only a scrub tells"
    )
    await upload_one(api, data)
    assert blob_path(settings, sha256(data)).read_bytes() == data
    await assert_served(api, data)


@pytest.mark.gen_test
async def test_someone_elses_upload_heals_it_for_everyone(
    api: Api, other_api: Api, services: Services, settings: Settings
) -> None:
    data = photo()
    await upload_one(api, data)
    rot(settings, data)
    await scrub(services)
    await assert_damaged(api, data)
    item = await upload_one(other_api, data)
    assert item["duplicate"] is False  # new to them
    await assert_served(api, data)
    await assert_served(other_api, data)


@pytest.mark.gen_test
async def test_a_file_mended_while_it_is_being_marked_is_served(
    api: Api, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = photo()
    await upload_one(api, data)
    await services.library.thumbnails.drain()
    path = blob_path(settings, sha256(data))
    path.unlink()
    report_damage = services.library.report_damage

    async def mended_meanwhile(record: ImageRecord, damage: Damage) -> None:
        await report_damage(record, damage)
        path.write_bytes(data)  # an upload of the same photo lands just now

    monkeypatch.setattr(services.library, "report_damage", mended_meanwhile)
    await assert_served(api, data)
    record = await services.catalog.get_blob(sha256(data))
    assert record is not None and record.damage is None


@pytest.mark.gen_test
async def test_check_counts_a_damaged_photo_as_missing_so_the_phone_sends_it_again(
    api: Api, services: Services, settings: Settings
) -> None:
    data, sound = photo((120, 90)), photo((90, 120))
    await upload_one(api, data)
    await upload_one(api, sound)
    rot(settings, data)
    await scrub(services)
    wanted = {"sha256": [sha256(data), sha256(sound)]}
    code, answer = await api.json(f"{IMAGES}/check", "POST", wanted)
    assert code == 200
    assert answer == {"present": [sha256(sound)], "missing": [sha256(data)]}
    md5s = {"md5": [hashlib.md5(data).hexdigest()]}
    code, answer = await api.json(f"{IMAGES}/check", "POST", md5s)
    assert answer["missing"] == md5s["md5"]
    await upload_one(api, data)  # what the phone then does
    code, answer = await api.json(f"{IMAGES}/check", "POST", wanted)
    assert answer["missing"] == []
    await assert_served(api, data)
