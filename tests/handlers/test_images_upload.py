"""Uploading to the image API: several files, duplicates, and a trashed photo back."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from server.config import Settings
from tests.conftest import Api, unique_jpeg
from tests.handlers.helpers import (
    API,
    assert_error,
    blob_path,
    files_in,
    ids_in,
    photo,
    png_bytes,
    sha256,
    upload_one,
)
from tests.handlers.image_api import IMAGES

# upload ----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_upload_several_files_with_any_field_names(api: Api, settings: Settings) -> None:
    files = [
        ("photo", "a.jpg", photo(taken="2020:02:02 02:02:02")),
        ("files[]", "b.png", png_bytes()),
        ("随便", "c.jpg", photo(size=(30, 40))),
    ]
    code, body = await api.upload(files)
    assert code == 200, body
    assert "rejected" not in body
    items = body["items"]
    assert [i["field"] for i in items] == ["photo", "files[]", "随便"]
    assert [i["filename"] for i in items] == ["a.jpg", "b.png", "c.jpg"]
    assert [i["duplicate"] for i in items] == [False, False, False]
    for item, (_, _, data) in zip(items, files, strict=True):
        assert item["id"] == item["sha256"] == sha256(data)
        assert item["md5"] == hashlib.md5(data).hexdigest()
        assert item["size"] == len(data)
        assert item["urls"]["original"] == f"{IMAGES}/{item['id']}/original"
        assert blob_path(settings, item["id"]).read_bytes() == data
    assert [i["mime"] for i in items] == ["image/jpeg", "image/png", "image/jpeg"]
    assert (items[0]["width"], items[0]["height"]) == (64, 48)
    assert (items[1]["width"], items[1]["height"]) == (40, 30)
    assert (items[2]["width"], items[2]["height"]) == (30, 40)
    assert items[0]["taken_at"].startswith("2020-02-02T02:02:02")
    assert set(await ids_in(api)) == {i["id"] for i in items}
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_whether_the_file_carried_exif_is_shown(api: Api) -> None:
    """A phone may hand over a re-encoded copy without EXIF; the library says so."""
    camera = await upload_one(api, photo(taken="2021:03:04 05:06:07"), "camera.jpg")
    copy = await upload_one(api, photo(), "copy.jpg")
    screenshot = await upload_one(api, png_bytes(), "screen.png")
    assert (camera["exif"], copy["exif"], screenshot["exif"]) == (True, False, False)
    code, page = await api.json(f"{IMAGES}?limit=10")
    assert code == 200
    assert {i["filename"]: i["exif"] for i in page["items"]} == {
        "camera.jpg": True,
        "copy.jpg": False,
        "screen.png": False,
    }
    code, item = await api.json(f"{IMAGES}/{copy['id']}")
    assert code == 200 and item["exif"] is False


@pytest.mark.gen_test
async def test_same_bytes_twice_is_one_blob_and_a_duplicate(api: Api, settings: Settings) -> None:
    data = photo()
    first = await upload_one(api, data, "first.jpg")
    second = await upload_one(api, data, "second.jpg")
    assert first["duplicate"] is False
    assert second["duplicate"] is True
    assert first["id"] == second["id"] == sha256(data)
    assert files_in(settings.blobs_dir) == [blob_path(settings, first["id"])]
    assert await ids_in(api) == [first["id"]]
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_same_bytes_twice_in_one_request(api: Api, settings: Settings) -> None:
    data = photo()
    code, body = await api.upload([("a", "one.jpg", data), ("b", "two.jpg", data)])
    assert code == 200, body
    assert [i["duplicate"] for i in body["items"]] == [False, True]
    assert files_in(settings.blobs_dir) == [blob_path(settings, sha256(data))]
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_same_bytes_from_two_people_at_once(
    api: Api, other_api: Api, settings: Settings
) -> None:
    data = unique_jpeg((800, 600)) + os.urandom(2 * 1024 * 1024)
    for attempt in range(3):
        results = await asyncio.gather(
            api.upload([("file", "mine.jpg", data)]),
            other_api.upload([("file", "theirs.jpg", data)]),
        )
        for code, body in results:
            assert code == 200, body
            assert body["items"][0]["id"] == sha256(data)
            assert body["items"][0]["duplicate"] is (attempt > 0)
    assert files_in(settings.blobs_dir) == [blob_path(settings, sha256(data))]
    assert blob_path(settings, sha256(data)).read_bytes() == data
    assert await ids_in(api) == [sha256(data)]
    assert await ids_in(other_api) == [sha256(data)]
    code, mine = await api.json(f"{IMAGES}/{sha256(data)}")
    code, theirs = await other_api.json(f"{IMAGES}/{sha256(data)}")
    assert (mine["filename"], theirs["filename"]) == ("mine.jpg", "theirs.jpg")
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_first_upload_by_each_person_is_not_a_duplicate(api: Api, other_api: Api) -> None:
    data = photo()
    assert (await upload_one(api, data))["duplicate"] is False
    assert (await upload_one(other_api, data))["duplicate"] is False
    assert (await upload_one(other_api, data))["duplicate"] is True


@pytest.mark.gen_test
async def test_upload_brings_a_trashed_photo_back(api: Api) -> None:
    data = photo()
    item = await upload_one(api, data)
    code, _ = await api.json(f"{IMAGES}/{item['id']}", "DELETE")
    assert code == 200
    assert await ids_in(api) == []
    assert await ids_in(api, f"{API}/trash") == [item["id"]]
    again = await upload_one(api, data)
    assert again["id"] == item["id"]
    assert again["duplicate"] is False, "a photo in the trash is not one the person has"
    assert "deleted_at" not in again
    assert await ids_in(api) == [item["id"]]
    assert await ids_in(api, f"{API}/trash") == []
    code, body = await api.json(f"{IMAGES}/{item['id']}")
    assert code == 200 and "deleted_at" not in body


@pytest.mark.gen_test
async def test_empty_file(api: Api, settings: Settings) -> None:
    code, body = await api.upload([("file", "empty.jpg", b"")])
    assert_error(code, body, 400, "empty_file")
    assert files_in(settings.blobs_dir) == []
    assert files_in(settings.tmp_dir) == []
    assert await ids_in(api) == []
