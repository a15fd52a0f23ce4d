"""tus 1.0's headers: numbers, Upload-Metadata, Upload-Checksum, and the errors that
carry protocol headers. Parsing only; `server/handlers/tus.py` applies the rules."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors
from ..services.uploads import SHA256_HEX_RE, metadata_value

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_STREAM = "application/offset+octet-stream"
CHECKSUMS: dict[str, Callable[[], Hash]] = {
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
}
MAX_METADATA = 16 * 1024
REASONS = {460: "Checksum Mismatch"}

_NUMBER = re.compile(r"\A[0-9]{1,19}\Z")
_METADATA_KEY = re.compile(r"\A[!-+\--~]+\Z")  # printable ASCII but space and comma


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


class TusError(errors.ApiError):
    """An error whose response carries protocol headers too (409 tells the offset)."""

    def __init__(
        self, kind: errors.ErrorKind, message: str | None = None, *, headers: dict[str, str]
    ) -> None:
        super().__init__(kind, message)
        self.headers = headers


def parse_number(name: str, value: str | None) -> int:
    if value is None:
        raise errors.ApiError(errors.INVALID_HEADER, f"{name} is required.")
    if not _NUMBER.match(value.strip()):
        raise errors.ApiError(errors.INVALID_HEADER, f"{name} must be a whole number of bytes.")
    return int(value)


def parse_metadata(header: str) -> dict[str, str]:
    """`key base64,key2 base64,key3` -> {key: base64 as sent}; 400 when malformed."""
    if len(header) > MAX_METADATA:
        raise errors.ApiError(
            errors.INVALID_METADATA, f"Upload-Metadata may be at most {MAX_METADATA} bytes."
        )
    metadata: dict[str, str] = {}
    if not header.strip():
        return metadata
    for pair in header.split(","):
        key, *rest = pair.strip().split(" ")
        if len(rest) > 1 or not _METADATA_KEY.match(key):
            raise errors.ApiError(errors.INVALID_METADATA)
        if key in metadata:
            raise errors.ApiError(errors.INVALID_METADATA, f"Upload-Metadata repeats {key!r}.")
        value = rest[0] if rest else ""
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            raise errors.ApiError(
                errors.INVALID_METADATA, f"The value of {key!r} in Upload-Metadata is not base64."
            ) from None
        metadata[key] = value
    sha256 = metadata_value(metadata, "sha256")
    if sha256 is not None and not SHA256_HEX_RE.match(sha256):
        raise errors.ApiError(
            errors.INVALID_METADATA, "The sha256 metadata must be 64 hexadecimal digits."
        )
    return metadata


def format_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(f"{key} {value}" if value else key for key, value in metadata.items())


def parse_checksum(header: str) -> Checksum:
    algorithm, _, encoded = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUMS:
        raise errors.ApiError(
            errors.CHECKSUM_ALGORITHM_UNSUPPORTED,
            f"Upload-Checksum uses {algorithm!r}; this server checks {', '.join(CHECKSUMS)}.",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise errors.ApiError(
            errors.INVALID_HEADER,
            f"Upload-Checksum must be an algorithm and the base64 of its {algorithm} digest.",
        )
    return Checksum(algorithm, digest)
