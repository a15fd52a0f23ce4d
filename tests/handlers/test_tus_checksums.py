"""tus checksums: per chunk, malformed, and the whole file's sha256."""

from __future__ import annotations

import hashlib

import pytest

from server.config import Settings
from server.services import Services
from tests.conftest import Api
from tests.handlers.helpers import API, assert_json_error, files_in, ids_in, sha256
from tests.handlers.tus_client import (
    b64,
    checksum,
    event_of,
    head,
    new_upload,
    offset_of,
    patch,
    picture,
    send_all,
    staged,
    upload_id,
    user_of,
)

# checksums -------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256"])
async def test_a_bad_chunk_is_460_and_a_good_retry_continues(
    api: Api, settings: Settings, algorithm: str
) -> None:
    data = picture(200_000)
    url = await new_upload(api, data)
    first = await patch(
        api, url, 0, data[:80_000], **{"Upload-Checksum": checksum(algorithm, data[:80_000])}
    )
    assert first.code == 204, first.body

    chunk = data[80_000:160_000]
    corrupted = chunk[:-1] + bytes([chunk[-1] ^ 1])
    response = await patch(
        api, url, 80_000, corrupted, **{"Upload-Checksum": checksum(algorithm, chunk)}
    )
    assert response.code == 460
    assert response.reason == "Checksum Mismatch"
    assert_json_error(response, 460, "checksum_mismatch")
    assert await offset_of(api, url) == 80_000
    assert staged(settings, url).read_bytes() == data[:80_000]

    retry = await patch(api, url, 80_000, chunk, **{"Upload-Checksum": checksum(algorithm, chunk)})
    assert retry.code == 204 and retry.headers["Upload-Offset"] == "160000"
    last = await patch(api, url, 160_000, data[160_000:])
    # The running digests went back with the file: the image id is the real hash.
    assert last.headers["Tubei-Image-Id"] == sha256(data)
    assert (await api.fetch(f"{API}/images/{sha256(data)}/original")).body == data


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("crc32 AAAAAA==", "checksum_algorithm_unsupported"),
        ("blake2b " + b64(bytes(64)), "checksum_algorithm_unsupported"),
        ("sha1", "invalid_header"),
        ("sha1 not-base64!", "invalid_header"),
        ("sha1 " + b64(bytes(10)), "invalid_header"),
    ],
)
async def test_a_malformed_checksum_is_400(api: Api, header: str, code: str) -> None:
    url = await new_upload(api, picture())
    response = await patch(api, url, 0, b"abc", **{"Upload-Checksum": header})
    assert_json_error(response, 400, code)
    assert await offset_of(api, url) == 0


@pytest.mark.gen_test(timeout=30)
async def test_whole_file_sha256_mismatch_is_460_and_the_upload_is_dropped(
    api: Api, services: Services, settings: Settings
) -> None:
    mailbox = services.events.subscribe((await user_of(services, api)).id)
    data = picture()
    wrong = hashlib.sha256(b"something else").hexdigest()
    url = await new_upload(api, data, sha256=wrong)
    assert (await patch(api, url, 0, data[:50_000])).code == 204
    response = await patch(api, url, 50_000, data[50_000:])
    assert_json_error(response, 460, "checksum_mismatch")
    failed = await event_of(mailbox, "upload.failed", upload_id(url))
    assert failed["error"]["code"] == "checksum_mismatch"
    assert (await head(api, url)).code == 404
    assert files_in(settings.tmp_dir) == []
    assert files_in(settings.blobs_dir) == []
    assert await ids_in(api) == []

    right = await new_upload(api, data, sha256=sha256(data).upper())
    assert (await send_all(api, right, data)).headers["Tubei-Image-Id"] == sha256(data)
