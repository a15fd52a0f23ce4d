"""Header walks with caps: files made to keep Pillow's parsers busy for seconds are
kept without metadata or thumbnail, and Pillow never walks them.

The files here are small (the caps are thousands, not millions): the point is the bound.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from server.imaging import Limits, read_metadata, render, scan, sniff
from tests.imaging.bombs import encode

MAX_PIXELS = 250_000_000


@pytest.fixture
def pillow_never_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was handed the file")

    monkeypatch.setattr(Image, "open", refuse)


def small_jpeg() -> bytes:
    return encode(Image.new("RGB", (32, 24), (200, 30, 30)), "JPEG")


def jpeg_with_comments(count: int) -> bytes:
    data = small_jpeg()
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def png_with_private_chunks(count: int) -> bytes:
    data = encode(Image.new("RGB", (32, 24), (30, 200, 30)), "PNG")
    chunk = struct.pack(">I", 0) + b"prIv" + struct.pack(">I", zlib.crc32(b"prIv"))
    at = data.index(b"IDAT") - 4
    return data[:at] + chunk * count + data[at:]


def gif_with_comment_blocks(count: int) -> bytes:
    data = encode(Image.new("P", (32, 24), 1), "GIF")
    at = data.index(b"\x2c")  # the first image descriptor
    comment = b"\x21\xfe" + b"\x01x" * count + b"\x00"
    return data[:at] + comment + data[at:]


def bmp_rle8(width: int, height: int) -> bytes:
    """A BI_RLE8 bitmap: every row 'end of line' (Pillow's decoder is pure Python)."""
    pixels = b"\x00\x00" * height + b"\x00\x01"
    header_size, palette = 40, bytes(256 * 4)
    offset = 14 + header_size + len(palette)
    info = struct.pack(
        "<IiiHHIIiiII", header_size, width, height, 1, 8, 1, len(pixels), 0, 0, 256, 0
    )
    file_header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return file_header + info + palette + pixels


def tiff_with_tags(count: int) -> bytes:
    entries = b"".join(struct.pack("<HHII", 40000 + n % 20000, 3, 1, 0) for n in range(count))
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", count) + entries + bytes(4)


SLOW = {
    "jpeg-comments": (lambda: jpeg_with_comments(scan.MAX_SEGMENTS + 1), "jpg"),
    "png-chunks": (lambda: png_with_private_chunks(scan.MAX_SEGMENTS + 1), "png"),
    "gif-sub-blocks": (lambda: gif_with_comment_blocks(scan.MAX_GIF_BLOCKS + 1), "gif"),
    "tiff-tags": (lambda: tiff_with_tags(scan.MAX_TIFF_TAGS + 1), "tif"),
}


@pytest.mark.parametrize("name", sorted(SLOW))
def test_over_a_cap_is_kept_unparsed(name: str, tmp_path: Path, pillow_never_opens: None) -> None:
    make, ext = SLOW[name]
    data = make()
    path = tmp_path / f"slow.{ext}"
    path.write_bytes(data)
    kind = sniff(data[:4096])
    assert kind is not None
    metadata = read_metadata(path, kind, MAX_PIXELS)
    assert metadata.decodable is False
    assert metadata.format == kind.format
    assert render(path, {360: tmp_path / "thumb.jpg"}, Limits(MAX_PIXELS)) is not None
    assert not (tmp_path / "thumb.jpg").exists()


@pytest.mark.parametrize(
    "name, data",
    [
        ("jpeg", jpeg_with_comments(scan.MAX_SEGMENTS - 20)),
        ("png", png_with_private_chunks(scan.MAX_SEGMENTS - 10)),
        ("gif", gif_with_comment_blocks(scan.MAX_GIF_BLOCKS - 10)),
    ],
)
def test_under_the_cap_is_an_ordinary_image(name: str, data: bytes, tmp_path: Path) -> None:
    path = tmp_path / f"ok.{name}"
    path.write_bytes(data)
    kind = sniff(data[:4096])
    assert kind is not None
    metadata = read_metadata(path, kind, MAX_PIXELS)
    assert (metadata.width, metadata.height, metadata.decodable) == (32, 24, True)
    assert render(path, {360: tmp_path / "thumb.jpg"}, Limits(MAX_PIXELS)) is None


def test_bmp_rle_is_not_offered_for_thumbnails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bmp_rle8(4000, 4000)
    path = tmp_path / "slow.bmp"
    path.write_bytes(data)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (4000, 4000)  # Pillow would decode it, a pixel at a time

    from PIL import BmpImagePlugin

    def refuse(*args: object) -> None:
        raise AssertionError("the RLE decoder ran")

    monkeypatch.setattr(BmpImagePlugin.BmpRleDecoder, "decode", refuse)
    kind = sniff(data[:4096])
    assert kind is not None and kind.format == "BMP"
    metadata = read_metadata(path, kind, MAX_PIXELS)
    assert (metadata.width, metadata.height, metadata.decodable) == (4000, 4000, False)
    assert "RLE" in (render(path, {360: tmp_path / "thumb.jpg"}, Limits(MAX_PIXELS)) or "")


def test_a_run_of_fill_bytes_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "MAX_HEADER_BYTES", 64 * 1024)
    data = small_jpeg()
    path = tmp_path / "fill.jpg"
    path.write_bytes(data[:2] + b"\xff" * (100 * 1024) + data[3:])
    kind = sniff(path.read_bytes()[:4096])
    assert kind is not None
    assert read_metadata(path, kind, MAX_PIXELS).decodable is False


def test_a_progressive_jpeg_counts_its_coefficients(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    path.write_bytes(encode(Image.new("RGB", (64, 48)), "JPEG", progressive=True))
    with path.open("rb") as f:
        assert scan.walk(f, sniff(path.read_bytes()[:16]) or pytest.fail()).jpeg_whole_coefficients
    path.write_bytes(small_jpeg())
    with path.open("rb") as f:
        header = scan.walk(f, sniff(path.read_bytes()[:16]) or pytest.fail())
        assert not header.jpeg_whole_coefficients
        assert header.dimensions == (32, 24)
