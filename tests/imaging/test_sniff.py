"""Telling image formats apart from their first bytes."""

import random
import struct
from collections.abc import Callable

import pytest

from server.imaging import SNIFF_BYTES, Kind, sniff
from tests.imaging.pictures import GIF, JPEG, PNG, _small, encode


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: encode(_small(), "JPEG"), JPEG),
        (lambda: encode(_small(), "PNG"), PNG),
        (lambda: encode(_small(), "GIF"), GIF),
        (lambda: encode(_small(), "WEBP"), Kind("WEBP", "image/webp")),
        (lambda: encode(_small(), "WEBP", lossless=True), Kind("WEBP", "image/webp")),
        (lambda: encode(_small().convert("RGBA"), "WEBP"), Kind("WEBP", "image/webp")),
        (lambda: encode(_small(), "TIFF"), Kind("TIFF", "image/tiff")),
        (lambda: encode(_small(), "TIFF", big_tiff=True), Kind("TIFF", "image/tiff")),
        (lambda: encode(_small(), "BMP"), Kind("BMP", "image/bmp")),
        (lambda: encode(_small(), "AVIF"), Kind("AVIF", "image/avif")),
        (lambda: encode(_small(), "HEIF"), Kind("HEIF", "image/heic")),
    ],
    ids=[
        "jpeg",
        "png",
        "gif",
        "webp",
        "webp-lossless",
        "webp-alpha",
        "tiff",
        "bigtiff",
        "bmp",
        "avif",
        "heic",
    ],
)
def test_sniff_generated_images(make: Callable[[], bytes], expected: Kind) -> None:
    data = make()
    assert sniff(data[:SNIFF_BYTES]) == expected
    assert sniff(data[:32]) == expected


def ftyp(major: bytes, *compatible: bytes, size: int | None = None) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", size if size is not None else 8 + len(body)) + b"ftyp" + body


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (ftyp(b"heic", b"mif1", b"heic"), Kind("HEIF", "image/heic")),
        (ftyp(b"mif1", b"mif1", b"heic"), Kind("HEIF", "image/heic")),
        (ftyp(b"heix", b"mif1"), Kind("HEIF", "image/heic")),
        (ftyp(b"hevc", b"msf1"), Kind("HEIF", "image/heic")),
        (ftyp(b"mif1", b"mif1", b"miaf"), Kind("HEIF", "image/heif")),
        (ftyp(b"msf1", b"iso8"), Kind("HEIF", "image/heif")),
        (ftyp(b"avif", b"mif1", b"miaf"), Kind("AVIF", "image/avif")),
        (ftyp(b"avis", b"msf1"), Kind("AVIF", "image/avif")),
        (ftyp(b"mif1", b"avif", b"miaf"), Kind("AVIF", "image/avif")),
        (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), None),
        (ftyp(b"qt  ", b"qt  "), None),
        (ftyp(b"crx ", b"crx "), None),
        # A compatible brand past the box's declared end belongs to the next box.
        (ftyp(b"isom", b"isom", size=20) + b"heic", None),
        (b"\x00\x00\x00\x18ftyp", None),
    ],
    ids=lambda value: value.hex()[:48] if isinstance(value, bytes) else str(value),
)
def test_sniff_iso_bmff_brands(head: bytes, expected: Kind | None) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff\xd8",
        b"hello, this is plain text\n" * 10,
        b"BMW 320i, one careful owner\n",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(100),
        b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100),
        b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
        random.Random(1234).randbytes(SNIFF_BYTES),
        ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41") + b"\x00\x00\x00\x08free",
    ],
    ids=["empty", "half-jpeg", "text", "bm-text", "pdf", "zip", "wav", "svg", "random", "mp4"],
)
def test_sniff_rejects_non_images(head: bytes) -> None:
    assert sniff(head) is None
