"""tuspy, the official Python tus client, against a real server: chunked, stopped, resumed.

tuspy blocks, so it runs in a thread while the test's event loop serves it.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from tusclient import client

from server.config import Settings
from tests.conftest import Api
from tests.handlers.helpers import API, files_in, sha256
from tests.interop.conftest import Photo

UPLOADS = f"{API}/uploads"
CHUNK = 256 * 1024


def tus_client(base_url: str, token: str | None) -> client.TusClient:
    return client.TusClient(base_url + UPLOADS + "/", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.gen_test(timeout=60)
async def test_tuspy_uploads_in_chunks_stops_and_a_fresh_uploader_resumes(
    api: Api, base_url: str, settings: Settings, big_jpeg: Photo
) -> None:
    data = big_jpeg.data

    def start() -> tuple[str, int]:
        with big_jpeg.path.open("rb") as stream:
            uploader = tus_client(base_url, api.token).uploader(
                file_stream=stream,
                chunk_size=CHUNK,
                metadata={"filename": "holiday.jpg", "filetype": "image/jpeg"},
                upload_checksum=True,
            )
            for _ in range(3):
                uploader.upload_chunk()
            assert uploader.url is not None
            return uploader.url, uploader.offset

    url, offset = await asyncio.to_thread(start)
    assert offset == 3 * CHUNK
    described = await api.fetch(url, "HEAD", None, {"Tus-Resumable": "1.0.0"})
    assert described.headers["Upload-Offset"] == str(3 * CHUNK)
    assert described.headers["Upload-Length"] == str(len(data))

    def resume() -> tuple[int, dict[str, str]]:
        with big_jpeg.path.open("rb") as stream:
            uploader = tus_client(base_url, api.token).uploader(
                file_stream=stream, url=url, chunk_size=CHUNK, upload_checksum=True
            )
            resumed_at = uploader.offset  # asked with HEAD
            uploader.upload()
            assert uploader.request is not None
            return resumed_at, dict(uploader.request.response_headers)

    resumed_at, headers = await asyncio.to_thread(resume)
    assert resumed_at == 3 * CHUNK
    assert headers["upload-offset"] == str(len(data))
    assert headers["tubei-image-id"] == sha256(data)
    assert headers["tubei-duplicate"] == "false"

    code, item = await api.json(f"{API}/images/{sha256(data)}")
    assert code == 200, item
    assert (item["filename"], item["size"], item["mime"]) == (
        "holiday.jpg",
        len(data),
        "image/jpeg",
    )
    assert item["md5"] == hashlib.md5(data).hexdigest()
    original = await api.fetch(f"{API}/images/{sha256(data)}/original")
    assert original.body == data
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test(timeout=60)
async def test_tuspy_in_one_go_then_again_is_a_duplicate(
    api: Api, base_url: str, big_jpeg: Photo
) -> None:
    data = big_jpeg.data

    def upload() -> dict[str, str]:
        with big_jpeg.path.open("rb") as stream:
            uploader = tus_client(base_url, api.token).uploader(
                file_stream=stream, chunk_size=1024 * 1024
            )
            uploader.upload()
            assert uploader.request is not None
            return dict(uploader.request.response_headers)

    first = await asyncio.to_thread(upload)
    second = await asyncio.to_thread(upload)
    assert first["tubei-image-id"] == second["tubei-image-id"] == sha256(data)
    assert (first["tubei-duplicate"], second["tubei-duplicate"]) == ("false", "true")


@pytest.mark.gen_test(timeout=60)
async def test_tuspy_is_refused_without_a_token(
    base_url: str, http_server: object, big_jpeg: Photo
) -> None:
    from tusclient.exceptions import TusCommunicationError

    def upload() -> None:
        with big_jpeg.path.open("rb") as stream:
            tus_client(base_url, "not-a-token").uploader(file_stream=stream).upload()

    with pytest.raises(TusCommunicationError) as raised:
        await asyncio.to_thread(upload)
    assert raised.value.status_code == 401
