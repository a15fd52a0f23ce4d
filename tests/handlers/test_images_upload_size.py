"""Large uploads to the image API: streamed byte exact, or refused over the limit."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from tests.conftest import Api, multipart, unique_jpeg
from tests.handlers.helpers import (
    assert_json_error,
    blob_path,
    files_in,
    raw_exchange,
    sha256,
    upload_one,
    wait_until_empty,
)
from tests.handlers.image_api import IMAGES


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
