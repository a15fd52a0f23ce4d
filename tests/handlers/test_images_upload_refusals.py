"""Uploads the image API refuses, in whole or in part, and odd but valid bodies."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from server.config import Settings
from tests.conftest import Api, multipart, unique_jpeg
from tests.handlers.helpers import (
    assert_error,
    assert_json_error,
    blob_path,
    files_in,
    ids_in,
    photo,
    png_bytes,
    raw_exchange,
    sha256,
    wait_until_empty,
)
from tests.handlers.image_api import IMAGES

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
