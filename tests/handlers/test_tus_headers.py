"""server.handlers.tus_headers: tus's numbers, Upload-Metadata and Upload-Checksum."""

from __future__ import annotations

import base64
import hashlib

import pytest

from server import errors
from server.handlers.tus_headers import (
    MAX_METADATA,
    format_metadata,
    parse_checksum,
    parse_metadata,
    parse_number,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_numbers_are_whole_byte_counts() -> None:
    assert parse_number("Upload-Length", "0") == 0
    assert parse_number("Upload-Length", " 1048576 ") == 1048576
    for bad in (None, "", "-1", "1.5", "0x10", "1" * 20):
        with pytest.raises(errors.ApiError) as caught:
            parse_number("Upload-Length", bad)
        assert caught.value.kind is errors.INVALID_HEADER
        assert "Upload-Length" in str(caught.value.message)


def test_metadata_round_trips_as_sent() -> None:
    header = f"filename {b64('IMG_0001.HEIC')},is_confidential,sha256 {b64('a' * 64)}"
    metadata = parse_metadata(header)
    assert metadata == {
        "filename": b64("IMG_0001.HEIC"),
        "is_confidential": "",
        "sha256": b64("a" * 64),
    }
    assert format_metadata(metadata) == header
    assert parse_metadata("  ") == {}


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("filename not-base64!", "not base64"),
        (f"name {b64('a')},name {b64('b')}", "repeats"),
        (f"na me {b64('a')}", ""),
        (f"sha256 {b64('abc')}", "64 hexadecimal"),
        ("x " + "A" * MAX_METADATA, "at most"),
    ],
)
def test_malformed_metadata_is_refused(header: str, why: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        parse_metadata(header)
    assert caught.value.kind is errors.INVALID_METADATA
    assert why in str(caught.value.message)


def test_checksums_name_a_known_algorithm_and_its_digest() -> None:
    digest = hashlib.sha256(b"tubei").digest()
    checksum = parse_checksum(f"SHA256 {base64.b64encode(digest).decode()}")
    assert (checksum.algorithm, checksum.digest) == ("sha256", digest)
    with pytest.raises(errors.ApiError) as caught:
        parse_checksum(f"crc32 {base64.b64encode(b'1234').decode()}")
    assert caught.value.kind is errors.CHECKSUM_ALGORITHM_UNSUPPORTED
    for bad in ("sha256", "sha256 !!!", f"sha256 {base64.b64encode(digest[:16]).decode()}"):
        with pytest.raises(errors.ApiError) as caught:
            parse_checksum(bad)
        assert caught.value.kind is errors.INVALID_HEADER
