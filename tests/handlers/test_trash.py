"""The trash: delete, list, restore, purge; blobs go only when no one refers to them."""

from __future__ import annotations

from datetime import datetime

import pytest

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.helpers import (
    API,
    assert_error,
    blob_path,
    files_in,
    ids_in,
    photo,
    sha256,
    thumb_files,
    upload_one,
)

IMAGES = f"{API}/images"
TRASH = f"{API}/trash"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.gen_test
async def test_delete_moves_to_the_trash(api: Api, settings: Settings) -> None:
    keep, drop = photo(), photo()
    kept = await upload_one(api, keep)
    dropped = await upload_one(api, drop)

    code, body = await api.json(f"{IMAGES}/{dropped['id']}", "DELETE")
    assert code == 200, body
    assert body["id"] == dropped["id"]
    deleted_at = parse_time(body["deleted_at"])
    assert deleted_at >= parse_time(dropped["uploaded_at"])

    assert await ids_in(api) == [kept["id"]]
    code, body = await api.json(f"{IMAGES}/{dropped['id']}")
    assert_error(code, body, 404, "image_not_found")

    code, page = await api.json(TRASH)
    assert code == 200
    assert [i["id"] for i in page["items"]] == [dropped["id"]]
    assert parse_time(page["items"][0]["deleted_at"]) == deleted_at
    assert page["next_cursor"] is None
    code, body = await api.json(f"{TRASH}/{dropped['id']}")
    assert code == 200 and body["deleted_at"] == page["items"][0]["deleted_at"]

    # In the trash the bytes stay, and the trash view can still show them.
    assert blob_path(settings, dropped["id"]).read_bytes() == drop
    urls = page["items"][0]["urls"]
    response = await api.fetch(urls["original"])
    assert (response.code, response.body) == (200, drop)
    assert (await api.fetch(urls["thumbnail"])).code == 200
    assert (await api.fetch(urls["preview"])).code == 200
    # Deleting again changes nothing: the trash time (and so its expiry) stays.
    code, body = await api.json(f"{IMAGES}/{dropped['id']}", "DELETE")
    assert code in (200, 404), body
    code, again = await api.json(TRASH)
    for listing in (again, page):  # the seconds its signed URLs have left run down
        for item in listing["items"]:
            item["signed_urls"].pop("expires_in")
    assert again == page


@pytest.mark.gen_test
async def test_restore_brings_it_back(api: Api) -> None:
    data = photo(taken="2019:09:09 09:09:09")
    item = await upload_one(api, data, "kept.jpg")
    code, _ = await api.json(f"{IMAGES}/{item['id']}", "DELETE")
    assert code == 200

    code, body = await api.json(f"{TRASH}/{item['id']}/restore", "POST")
    assert code == 200, body
    assert body["id"] == item["id"] and "deleted_at" not in body
    assert (body["filename"], body["taken_at"]) == ("kept.jpg", item["taken_at"])
    assert await ids_in(api) == [item["id"]]
    assert await ids_in(api, TRASH) == []
    response = await api.fetch(f"{IMAGES}/{item['id']}/original")
    assert response.code == 200 and response.body == data

    code, body = await api.json(f"{TRASH}/{item['id']}/restore", "POST")
    assert code in (200, 404), body
    assert await ids_in(api) == [item["id"]]
    code, body = await api.json(f"{TRASH}/{sha256(b'never uploaded')}/restore", "POST")
    assert_error(code, body, 404, "image_not_found")


@pytest.mark.gen_test
async def test_purge_is_at_once_and_gc_removes_the_blob_after_the_grace(
    api: Api, services: Services, settings: Settings
) -> None:
    gone, stays = photo((500, 400)), photo()
    item = await upload_one(api, gone)
    other = await upload_one(api, stays)
    await services.library.thumbnails.drain()
    assert thumb_files(settings, item["id"])
    code, _ = await api.json(f"{IMAGES}/{item['id']}", "DELETE")
    assert code == 200

    response = await api.fetch(f"{TRASH}/{item['id']}", "DELETE")
    assert response.code == 204, response.body
    assert await ids_in(api, TRASH) == []
    assert await ids_in(api) == [other["id"]]
    code, body = await api.json(f"{API}/images/check", "POST", {"sha256": [item["id"]]})
    assert body == {"present": [], "missing": [item["id"]]}

    code, body = await api.json(f"{TRASH}/{item['id']}", "DELETE")
    assert_error(code, body, 404, "image_not_found")
    code, body = await api.json(f"{TRASH}/{item['id']}/restore", "POST")
    assert_error(code, body, 404, "image_not_found")
    for suffix in ("", "/original", "/thumbnail"):
        code, body = await api.json(f"{IMAGES}/{item['id']}{suffix}")
        assert_error(code, body, 404, "image_not_found")

    # Its bytes stay for the grace period (an upload elsewhere may be recording them),
    # then the next gc takes them and their thumbnails.
    assert (await services.library.collect_garbage()).blobs_removed == 0
    assert blob_path(settings, item["id"]).read_bytes() == gone
    services.library.collector.grace = 0
    assert (await services.library.collect_garbage()).blobs_removed == 1
    assert not blob_path(settings, item["id"]).exists()
    assert thumb_files(settings, item["id"]) == []
    assert files_in(settings.blobs_dir) == [blob_path(settings, other["id"])]

    again = await upload_one(api, gone)
    assert again["duplicate"] is False
    assert blob_path(settings, item["id"]).read_bytes() == gone


@pytest.mark.gen_test
@pytest.mark.parametrize("their_copy", ["in their library", "in their trash"])
async def test_purge_keeps_a_blob_someone_else_has(
    api: Api, other_api: Api, services: Services, settings: Settings, their_copy: str
) -> None:
    data = photo((500, 400))
    item = await upload_one(api, data)
    await upload_one(other_api, data)
    if their_copy == "in their trash":
        code, _ = await other_api.json(f"{IMAGES}/{item['id']}", "DELETE")
        assert code == 200
    await services.library.thumbnails.drain()
    code, _ = await api.json(f"{IMAGES}/{item['id']}", "DELETE")
    assert code == 200
    response = await api.fetch(f"{TRASH}/{item['id']}", "DELETE")
    assert response.code == 204

    assert blob_path(settings, item["id"]).read_bytes() == data
    assert len(thumb_files(settings, item["id"])) == 1  # the grid (previews are made on view)
    assert await ids_in(api, TRASH) == []
    if their_copy == "in their trash":
        code, _ = await other_api.json(f"{TRASH}/{item['id']}/restore", "POST")
        assert code == 200
    response = await other_api.fetch(f"{IMAGES}/{item['id']}/original")
    assert response.code == 200 and response.body == data
    assert (await other_api.fetch(f"{IMAGES}/{item['id']}/thumbnail")).code == 200


@pytest.mark.gen_test
async def test_purge_of_what_is_not_in_the_trash(api: Api, settings: Settings) -> None:
    data = photo()
    item = await upload_one(api, data)
    for image_id in (item["id"], sha256(b"never uploaded")):
        code, body = await api.json(f"{TRASH}/{image_id}", "DELETE")
        assert_error(code, body, 404, "image_not_found")
        code, body = await api.json(f"{TRASH}/{image_id}")
        assert_error(code, body, 404, "image_not_found")
    code, body = await api.json(f"{TRASH}/not-an-id", "DELETE")
    assert_error(code, body, 400, "invalid_id")
    assert await ids_in(api) == [item["id"]]
    assert blob_path(settings, item["id"]).read_bytes() == data


@pytest.mark.gen_test
async def test_trash_is_per_person(api: Api, other_api: Api, settings: Settings) -> None:
    shared, mine = photo(), photo()
    shared_item = await upload_one(api, shared)
    await upload_one(other_api, shared)
    mine_item = await upload_one(api, mine)
    for image_id in (shared_item["id"], mine_item["id"]):
        code, _ = await api.json(f"{IMAGES}/{image_id}", "DELETE")
        assert code == 200

    assert sorted(await ids_in(api, TRASH)) == sorted([shared_item["id"], mine_item["id"]])
    assert await ids_in(other_api, TRASH) == []
    assert await ids_in(other_api) == [shared_item["id"]]
    for suffix in ("/original", "/thumbnail"):
        code, body = await other_api.json(f"{IMAGES}/{mine_item['id']}{suffix}")
        assert_error(code, body, 404, "image_not_found")
    for image_id in (shared_item["id"], mine_item["id"]):
        code, body = await other_api.json(f"{TRASH}/{image_id}")
        assert_error(code, body, 404, "image_not_found")
        code, body = await other_api.json(f"{TRASH}/{image_id}", "DELETE")
        assert_error(code, body, 404, "image_not_found")
    code, body = await other_api.json(f"{TRASH}/{mine_item['id']}/restore", "POST")
    assert_error(code, body, 404, "image_not_found")
    assert await ids_in(other_api) == [shared_item["id"]]
    # Nothing the other person tried touched this person's trash.
    assert sorted(await ids_in(api, TRASH)) == sorted([shared_item["id"], mine_item["id"]])
    assert blob_path(settings, mine_item["id"]).exists()


@pytest.mark.gen_test(timeout=20)
async def test_trash_pages_newest_deleted_first(api: Api) -> None:
    # Taken order is the reverse of deletion order: the trash sorts by deletion.
    items = [await upload_one(api, photo(taken=f"2020:01:0{n} 00:00:00")) for n in range(1, 6)]
    for item in items:
        code, _ = await api.json(f"{IMAGES}/{item['id']}", "DELETE")
        assert code == 200
    code, full = await api.json(TRASH)
    assert [i["id"] for i in full["items"]] == [i["id"] for i in reversed(items)]
    deleted = [parse_time(i["deleted_at"]) for i in full["items"]]
    assert deleted == sorted(deleted, reverse=True)

    seen: list[str] = []
    cursor = None
    while True:
        query = f"{TRASH}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        code, page = await api.json(query)
        assert code == 200, page
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in full["items"]]
