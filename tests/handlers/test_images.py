"""The image API's list and its one image, and the errors around them."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.handlers.helpers import assert_error, ids_in, photo, sha256, upload_one
from tests.handlers.image_api import IMAGES, SHA, taken


async def one_page(api: Api, uploaded: list[dict[str, Any]]) -> list[str]:
    """The whole library in one page, checked to be newest taken first."""
    code, page = await api.json(f"{IMAGES}?limit=500")
    assert code == 200 and page["next_cursor"] is None
    times = [taken(i) for i in page["items"]]
    assert times == sorted(times, reverse=True)
    ids = [i["id"] for i in page["items"]]
    assert sorted(ids) == sorted(i["id"] for i in uploaded)
    return ids


async def walk(api: Api, limit: int, between: Callable[[int], Any] | None = None) -> list[str]:
    """Every id in the library, page by page; `between(n)` runs after page n."""
    seen: list[str] = []
    cursor: str | None = None
    for number in range(100):
        query = f"?limit={limit}" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        code, page = await api.json(IMAGES + query)
        assert code == 200, page
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        assert page["items"], "a page with a next_cursor must not be empty"
        if between is not None:
            await between(number)
    raise AssertionError("the pages never end")


# list ------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_empty_library(api: Api) -> None:
    code, page = await api.json(IMAGES)
    assert code == 200
    assert page == {"items": [], "next_cursor": None}


@pytest.mark.gen_test
async def test_list_is_newest_taken_first_not_newest_uploaded(api: Api) -> None:
    dates = ["2019:05:01 10:00:00", "2023:01:01 08:00:00", "2015:12:31 23:59:59"]
    uploaded = [await upload_one(api, photo(taken=d)) for d in dates]
    code, page = await api.json(IMAGES)
    assert code == 200
    expected = [uploaded[1]["id"], uploaded[0]["id"], uploaded[2]["id"]]
    assert [i["id"] for i in page["items"]] == expected
    assert page["items"][0]["taken_at"].startswith("2023-01-01T08:00:00")


@pytest.mark.gen_test
async def test_list_orders_by_the_moment_taken_across_time_zones(api: Api) -> None:
    # 10:00 in Shanghai is 02:00 UTC: earlier than 05:00 with no offset (read as UTC).
    shanghai = await upload_one(api, photo(taken="2021:01:01 10:00:00", offset="+08:00"))
    plain = await upload_one(api, photo(taken="2021:01:01 05:00:00"))
    lisbon = await upload_one(api, photo(taken="2021:01:01 04:30:00", offset="-01:00"))
    assert shanghai["taken_at"] == "2021-01-01T10:00:00+08:00"
    assert await ids_in(api) == [lisbon["id"], plain["id"], shanghai["id"]]


@pytest.mark.gen_test(timeout=30)
async def test_keyset_pages_cover_everything_once_in_order(api: Api) -> None:
    dates = [f"2021:01:{day:02d} 12:00:00" for day in (3, 9, 1, 7, 5)]
    # Three photos taken in the same second: the page boundary falls among them.
    dates += ["2021:01:05 12:00:00", "2021:01:05 12:00:00"]
    items = [await upload_one(api, photo(taken=d)) for d in dates]
    expected = await one_page(api, items)

    for limit in (1, 2, 3, 7):
        assert await walk(api, limit) == expected, limit

    code, page = await api.json(f"{IMAGES}?limit=7")
    assert code == 200
    assert page["next_cursor"] is None, "a full last page has no next page"
    code, page = await api.json(f"{IMAGES}?limit=6")
    assert page["next_cursor"] is not None


@pytest.mark.gen_test(timeout=30)
async def test_pages_stay_stable_while_photos_are_added(api: Api) -> None:
    dates = [f"2022:06:{day:02d} 09:30:00" for day in range(1, 9)]
    items = [await upload_one(api, photo(taken=d)) for d in dates]
    expected = await one_page(api, items)
    added_newer: list[str] = []
    added_older: list[str] = []

    async def add_some(number: int) -> None:
        if number >= 2:
            return
        # Newer than every page already read: belongs above, must not shift what follows.
        added_newer.append((await upload_one(api, photo(taken="2024:01:01 00:00:00")))["id"])
        added_newer.append((await upload_one(api, photo()))["id"])  # no EXIF: taken now
        # Older than everything so far: must turn up once, at the end.
        taken = f"{2001 - number}:01:01 00:00:00"
        added_older.append((await upload_one(api, photo(taken=taken)))["id"])

    seen = await walk(api, 3, add_some)
    assert len(seen) == len(set(seen)), "an item came twice"
    assert seen == expected + added_older
    assert not set(added_newer) & set(seen)
    code, first = await api.json(f"{IMAGES}?limit=4")
    assert code == 200
    assert {i["id"] for i in first["items"]} == set(added_newer)


@pytest.mark.gen_test
@pytest.mark.parametrize("limit", ["0", "-1", "501", "abc", "1.5", ""])
async def test_limit_out_of_bounds(api: Api, limit: str) -> None:
    code, body = await api.json(f"{IMAGES}?limit={limit}")
    assert_error(code, body, 400, "invalid_argument")


@pytest.mark.gen_test
async def test_limit_bounds_are_inclusive(api: Api) -> None:
    await upload_one(api, photo())
    await upload_one(api, photo())
    code, page = await api.json(f"{IMAGES}?limit=1")
    assert code == 200 and len(page["items"]) == 1 and page["next_cursor"]
    code, page = await api.json(f"{IMAGES}?limit=500")
    assert code == 200 and len(page["items"]) == 2 and page["next_cursor"] is None


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = {
    "not base64": "not a cursor!",
    "percent signs": "%%%%",
    "not utf-8": b64(b"\xff\xfe\xfd"),
    "one element": b64(b"[1]"),
    "object": b64(b'{"a": 1, "b": 2}'),
    "number": b64(b"12"),
    "text time": b64(json.dumps(["yesterday", SHA]).encode()),
    "uppercase id": b64(json.dumps([1.5, "A" * 64]).encode()),
    "short id": b64(json.dumps([1.5, "xyz"]).encode()),
    "boolean time": b64(json.dumps([True, SHA]).encode()),
    "three elements": b64(json.dumps([1.5, SHA, 3]).encode()),
    "nan": b64(b'[NaN, "' + SHA.encode() + b'"]'),
    "infinity": b64(b'[-Infinity, "' + SHA.encode() + b'"]'),
    # found by schemathesis: these were 500s
    "nested too deeply": b64(b"[" * 3000),
    "time past a float": b64(json.dumps([10**400, SHA]).encode()),
}


@pytest.mark.gen_test
@pytest.mark.parametrize("case", sorted(BAD_CURSORS))
async def test_bad_cursor(api: Api, case: str) -> None:
    await upload_one(api, photo())
    cursor = urllib.parse.quote(BAD_CURSORS[case])
    code, body = await api.json(f"{IMAGES}?cursor={cursor}")
    assert_error(code, body, 400, "invalid_cursor")


# one image -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_get_one_image(api: Api) -> None:
    data = photo(taken="2018:07:08 09:10:11")
    uploaded = await upload_one(api, data, "holiday.jpg")
    code, body = await api.json(f"{IMAGES}/{uploaded['id']}")
    assert code == 200, body
    assert {
        "id",
        "sha256",
        "md5",
        "size",
        "mime",
        "width",
        "height",
        "taken_at",
        "uploaded_at",
        "filename",
        "thumbnail",
        "urls",
    } <= set(body)
    assert body["id"] == body["sha256"] == sha256(data)
    assert body["md5"] == hashlib.md5(data).hexdigest()
    assert (body["size"], body["mime"]) == (len(data), "image/jpeg")
    assert body["filename"] == "holiday.jpg"
    assert (body["width"], body["height"]) == (64, 48)
    assert body["taken_at"].startswith("2018-07-08T09:10:11")
    assert body["thumbnail"] is True
    assert body["urls"]["original"] == f"{IMAGES}/{body['id']}/original"
    assert body["urls"]["thumbnail"].startswith(f"{IMAGES}/{body['id']}/thumbnail")
    assert "duplicate" not in body and "deleted_at" not in body


@pytest.mark.gen_test
async def test_get_unknown_image(api: Api) -> None:
    code, body = await api.json(f"{IMAGES}/{sha256(b'nothing')}")
    assert_error(code, body, 404, "image_not_found")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "bad", ["abc", "A" * 64, "g" * 64, "a" * 65, "a" * 63, "%20" + "a" * 61, SHA + "%0A"]
)
async def test_get_malformed_id(api: Api, bad: str) -> None:
    for suffix in ("", "/original", "/thumbnail"):
        code, body = await api.json(f"{IMAGES}/{bad}{suffix}")
        assert_error(code, body, 400, "invalid_id")


@pytest.mark.gen_test
async def test_another_persons_image_is_not_found(api: Api, other_api: Api) -> None:
    item = await upload_one(other_api, photo())
    for suffix in ("", "/original", "/thumbnail", "/thumbnail?size=preview"):
        code, body = await api.json(f"{IMAGES}/{item['id']}{suffix}")
        assert_error(code, body, 404, "image_not_found")
    code, body = await api.json(f"{IMAGES}/{item['id']}", "DELETE")
    assert_error(code, body, 404, "image_not_found")
    assert await ids_in(other_api) == [item["id"]]
