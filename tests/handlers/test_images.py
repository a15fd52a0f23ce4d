"""The image API: list, upload, check, one image, and the errors around them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from tests.conftest import Api, multipart, unique_jpeg
from tests.handlers.helpers import (
    API,
    assert_error,
    assert_json_error,
    blob_path,
    files_in,
    ids_in,
    photo,
    png_bytes,
    raw_exchange,
    sha256,
    upload_one,
    wait_until_empty,
)

IMAGES = f"{API}/images"
CHECK = f"{IMAGES}/check"


def taken(item: dict[str, Any]) -> float:
    moment = datetime.fromisoformat(item["taken_at"].replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


SHA = "a" * 64
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


NOT_IMAGES = {
    "text": b"Hello, this is a plain text file, not a photo.\n" * 50,
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" + b"x" * 5000,
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + os.urandom(8000),
    "html": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
    "short jpeg-ish": b"\xff\xd8",
    # The magic of a JPEG or a PNG, and no image header after it: not photos either.
    "jpeg magic, then zeros": b"\xff\xd8\xff" + bytes(300_000 // 3),
    "jpeg magic, then text": b"\xff\xd8\xff\xe0" + b"not a JFIF segment at all" * 100,
    "png magic, then noise": b"\x89PNG\r\n\x1a\n" + os.urandom(4000),
}


@pytest.mark.gen_test
@pytest.mark.parametrize("kind", sorted(NOT_IMAGES))
async def test_not_an_image_is_refused(api: Api, settings: Settings, kind: str) -> None:
    code, body = await api.upload([("file", "photo.jpg", NOT_IMAGES[kind])])
    assert_error(code, body, 415, "unsupported_media_type")
    assert files_in(settings.blobs_dir) == []
    assert files_in(settings.tmp_dir) == []
    assert await ids_in(api) == []


@pytest.mark.gen_test
async def test_mixed_request_keeps_the_good_and_lists_the_bad(api: Api, settings: Settings) -> None:
    good = photo()
    code, body = await api.upload(
        [
            ("first", "notes.txt", NOT_IMAGES["text"]),
            ("second", "good.jpg", good),
            ("third", "empty.jpg", b""),
        ]
    )
    assert code == 200, body
    assert [i["id"] for i in body["items"]] == [sha256(good)]
    assert body["items"][0]["field"] == "second"
    rejected = body["rejected"]
    assert [(r["field"], r["filename"]) for r in rejected] == [
        ("first", "notes.txt"),
        ("third", "empty.jpg"),
    ]
    assert [r["error"]["code"] for r in rejected] == ["unsupported_media_type", "empty_file"]
    assert files_in(settings.blobs_dir) == [blob_path(settings, sha256(good))]
    assert files_in(settings.tmp_dir) == []
    assert await ids_in(api) == [sha256(good)]


@pytest.mark.gen_test
async def test_body_trickled_in_tiny_chunks(api: Api, settings: Settings) -> None:
    files = [("first", "a.jpg", photo()), ("second", "b.png", png_bytes())]
    body, content_type = multipart(files, {"note": "a form field between the files"})

    async def produce(write: Callable[[bytes], Any]) -> None:
        for start in range(0, len(body), 7):
            await write(body[start : start + 7])

    response = await api.client.fetch(
        api.base_url + IMAGES,
        method="POST",
        headers=api.headers({"Content-Type": content_type}),
        body_producer=produce,
        raise_error=False,
    )
    assert response.code == 200, response.body
    items = json.loads(response.body)["items"]
    assert [(i["field"], i["filename"], i["id"]) for i in items] == [
        (field, name, sha256(data)) for field, name, data in files
    ]
    for _, _, data in files:
        assert blob_path(settings, sha256(data)).read_bytes() == data


@pytest.mark.gen_test
async def test_form_fields_alone_are_no_files(api: Api, settings: Settings) -> None:
    body, content_type = multipart([], {"note": "hello"})
    response = await api.fetch(IMAGES, "POST", body, {"Content-Type": content_type})
    assert_json_error(response, 400, "no_files")


@pytest.mark.gen_test
async def test_media_type_and_disposition_are_case_insensitive(api: Api) -> None:
    data = photo()
    body, _ = multipart([("file", "a.jpg", data)], boundary="CaseBoundary")
    body = body.replace(b"Content-Disposition: form-data", b"content-disposition: Form-Data")
    response = await api.fetch(
        IMAGES, "POST", body, {"Content-Type": 'Multipart/Form-Data; boundary="CaseBoundary"'}
    )
    assert response.code == 200, response.body
    assert json.loads(response.body)["items"][0]["id"] == sha256(data)


def good_body() -> tuple[bytes, bytes]:
    body, _ = multipart([("a", "a.jpg", photo()), ("b", "b.jpg", photo())])
    return body, b"multipart/form-data; boundary=tubei-test-boundary-7MA4YWxkTrZu0gW"


def malformed() -> dict[str, tuple[bytes, str]]:
    body, content_type = good_body()
    ct = content_type.decode()
    closing = body.rindex(b"--tubei-test-boundary")
    second = body.index(b"--tubei-test-boundary", 10)
    return {
        "no boundary": (body, "multipart/form-data"),
        "empty boundary": (body, "multipart/form-data; boundary="),
        "wrong content type": (body, "application/octet-stream"),
        "form urlencoded": (b"a=1&b=2", "application/x-www-form-urlencoded"),
        "no content type": (body, ""),
        "other boundary": (body, "multipart/form-data; boundary=something-else"),
        "cut before closing boundary": (body[:closing], ct),
        "cut inside the second file": (body[: second + 300], ct),
        "cut inside the first file": (body[:400], ct),
        "garbage": (os.urandom(4096), ct),
        "empty body": (b"", ct),
        "part without disposition": (
            b"--tubei-test-boundary-7MA4YWxkTrZu0gW\r\nContent-Type: image/jpeg\r\n\r\n"
            + photo()
            + b"\r\n--tubei-test-boundary-7MA4YWxkTrZu0gW--\r\n",
            ct,
        ),
    }


@pytest.mark.gen_test
@pytest.mark.parametrize("case", sorted(malformed()))
async def test_malformed_multipart(api: Api, settings: Settings, case: str) -> None:
    body, content_type = malformed()[case]
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.fetch(IMAGES, "POST", body, headers)
    assert_json_error(response, 400, "bad_multipart")
    assert files_in(settings.blobs_dir) == []
    assert await wait_until_empty(settings.tmp_dir) == []
    assert await ids_in(api) == []


@pytest.mark.gen_test
async def test_connection_dropped_mid_upload_leaves_nothing(
    api: Api, settings: Settings, base_url: str
) -> None:
    body, content_type = multipart([("file", "big.jpg", unique_jpeg() + os.urandom(1 << 20))])
    head = (
        f"POST {IMAGES} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {api.token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    await raw_exchange(base_url, head, body[: len(body) // 2], close_after_send=True)
    assert await wait_until_empty(settings.tmp_dir) == []
    assert files_in(settings.blobs_dir) == []
    assert await ids_in(api) == []


@pytest.mark.gen_test(timeout=60)
async def test_forty_megabytes_streamed_byte_exact(api: Api, settings: Settings) -> None:
    # A phone's motion photo: a JPEG with its video appended after the image's end.
    data = unique_jpeg((640, 480)) + os.urandom(40 * 1024 * 1024)
    body, content_type = multipart([("file", "motion.jpg", data)])
    chunk = 1024 * 1024

    async def produce(write: Callable[[bytes], Any]) -> None:
        for start in range(0, len(body), chunk):
            await write(body[start : start + chunk])

    response = await api.client.fetch(
        api.base_url + IMAGES,
        method="POST",
        headers=api.headers({"Content-Type": content_type, "Content-Length": str(len(body))}),
        body_producer=produce,
        raise_error=False,
        request_timeout=60,
    )
    assert response.code == 200, response.body
    item = json.loads(response.body)["items"][0]
    assert (item["sha256"], item["size"]) == (sha256(data), len(data))

    digest = hashlib.sha256()
    received = 0

    def take(piece: bytes) -> None:
        nonlocal received
        received += len(piece)
        digest.update(piece)

    response = await api.client.fetch(
        api.base_url + f"{IMAGES}/{item['id']}/original",
        headers=api.headers(),
        streaming_callback=take,
        raise_error=False,
        request_timeout=60,
    )
    assert response.code == 200
    assert received == len(data)
    assert digest.hexdigest() == sha256(data)
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_larger_than_the_default_limit_is_refused_from_the_headers(
    api: Api, settings: Settings, base_url: str
) -> None:
    length = settings.max_upload_size + 1
    assert length > 100 * 1024 * 1024, "beyond Tornado's own default body limit too"
    head = (
        f"POST {IMAGES} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {api.token}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    answer = await raw_exchange(base_url, head, b"--x\r\n")
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert files_in(settings.tmp_dir) == []


class TestUploadLimit:
    """A server that takes at most 1 MiB a request."""

    LIMIT = 1024 * 1024

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data=tmp_path / "data", max_upload_size=self.LIMIT)

    @pytest.mark.gen_test
    async def test_refused_from_the_headers_alone(
        self, api: Api, settings: Settings, base_url: str
    ) -> None:
        head = (
            f"POST {IMAGES} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {api.token}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {self.LIMIT + 1}\r\n\r\n"
        ).encode()
        # No body is sent at all: the answer can only come from the headers.
        answer = await raw_exchange(base_url, head)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        assert b"application/json" in answer.lower()
        assert files_in(settings.tmp_dir) == []

    @pytest.mark.gen_test
    async def test_whole_body_over_the_limit(self, api: Api, settings: Settings) -> None:
        body, content_type = multipart([("file", "big.jpg", unique_jpeg() + b"\0" * self.LIMIT)])
        response = await api.fetch(IMAGES, "POST", body, {"Content-Type": content_type})
        assert_json_error(response, 413, "payload_too_large")
        assert await wait_until_empty(settings.tmp_dir) == []
        assert files_in(settings.blobs_dir) == []

    @pytest.mark.gen_test
    async def test_chunked_body_over_the_limit(self, api: Api, settings: Settings) -> None:
        body, content_type = multipart(
            [("file", "big.jpg", unique_jpeg() + os.urandom(2 * self.LIMIT))]
        )

        async def produce(write: Callable[[bytes], Any]) -> None:
            for start in range(0, len(body), 64 * 1024):
                await write(body[start : start + 64 * 1024])

        response = await api.client.fetch(
            api.base_url + IMAGES,
            method="POST",
            headers=api.headers({"Content-Type": content_type}),
            body_producer=produce,
            raise_error=False,
        )
        assert_json_error(response, 413, "payload_too_large")
        assert await wait_until_empty(settings.tmp_dir) == []
        assert files_in(settings.blobs_dir) == []

    @pytest.mark.gen_test
    async def test_under_the_limit_is_kept(self, api: Api, settings: Settings) -> None:
        data = unique_jpeg() + os.urandom(self.LIMIT - 64 * 1024)
        item = await upload_one(api, data)
        assert blob_path(settings, item["id"]).read_bytes() == data


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


# check -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_check_by_sha256(api: Api) -> None:
    have = [photo(), photo()]
    for data in have:
        await upload_one(api, data)
    unknown = sha256(b"never uploaded")
    asked = [sha256(have[0]), unknown, sha256(have[1]).upper(), sha256(have[0])]
    code, body = await api.json(CHECK, "POST", {"sha256": asked})
    assert code == 200, body
    assert body == {"present": [sha256(have[0]), sha256(have[1])], "missing": [unknown]}


@pytest.mark.gen_test
async def test_check_by_md5(api: Api) -> None:
    data = photo()
    await upload_one(api, data)
    md5 = hashlib.md5(data).hexdigest()
    unknown = hashlib.md5(b"never uploaded").hexdigest()
    code, body = await api.json(CHECK, "POST", {"md5": [unknown, md5.upper()]})
    assert code == 200, body
    assert body == {"present": [md5], "missing": [unknown]}
    code, body = await api.json(CHECK, "POST", {"md5": []})
    assert (code, body) == (200, {"present": [], "missing": []})


@pytest.mark.gen_test
async def test_check_sees_only_my_library(api: Api, other_api: Api) -> None:
    mine, theirs, trashed = photo(), photo(), photo()
    await upload_one(api, mine)
    await upload_one(other_api, theirs)
    await upload_one(api, trashed)
    code, _ = await api.json(f"{IMAGES}/{sha256(trashed)}", "DELETE")
    assert code == 200
    for field, digest in (("sha256", sha256), ("md5", lambda b: hashlib.md5(b).hexdigest())):
        asked = [digest(mine), digest(theirs), digest(trashed)]
        code, body = await api.json(CHECK, "POST", {field: asked})
        assert code == 200, body
        assert body == {"present": [digest(mine)], "missing": [digest(theirs), digest(trashed)]}
        code, body = await other_api.json(CHECK, "POST", {field: asked})
        assert body == {"present": [digest(theirs)], "missing": [digest(mine), digest(trashed)]}


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("raw", "error_code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[]", "invalid_json"),
        (b'"sha256"', "invalid_json"),
        (b"null", "invalid_json"),
        (json.dumps({"sha256": [SHA], "md5": ["a" * 32]}).encode(), "invalid_argument"),
        (b"{}", "invalid_argument"),
        (json.dumps({"sha1": ["a" * 40]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": SHA}).encode(), "invalid_argument"),
        (json.dumps({"sha256": {SHA: True}}).encode(), "invalid_argument"),
        (json.dumps({"md5": None}).encode(), "invalid_argument"),
        (json.dumps({"sha256": ["z" * 64]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": ["a" * 63]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": ["a" * 32]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": [SHA + "\n"]}).encode(), "invalid_argument"),
        (json.dumps({"md5": ["a" * 64]}).encode(), "invalid_argument"),
        (json.dumps({"md5": ["g" * 32]}).encode(), "invalid_argument"),
        (json.dumps({"md5": [123]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": [SHA] * 5001}).encode(), "invalid_argument"),
    ],
)
async def test_check_bad_bodies(api: Api, raw: bytes, error_code: str) -> None:
    response = await api.fetch(CHECK, "POST", raw, {"Content-Type": "application/json"})
    assert_json_error(response, 400, error_code)


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
