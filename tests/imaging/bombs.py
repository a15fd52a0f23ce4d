"""Hostile images made by hand: small files whose headers promise huge decodes.

Each is a real, small image of its format whose declared size is then rewritten (or, for
PNG, whose pixel stream really inflates that far): what a decoder would allocate is what
the header says, and that is what the decode budget must judge.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, color_type: int = 6, depth: int = 8) -> bytes:
    """A PNG whose pixel data really inflates to width x height (zeros, deflated well)."""
    bands = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    rows = (b"\x00" + bytes(width * bands * depth // 8)) * 64
    packer = zlib.compressobj(6)
    idat = b"".join(packer.compress(rows) for _ in range(height // 64))
    idat += packer.compress(rows[: len(rows) // 64 * (height % 64)]) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def webp_lossless(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGBA", (16, 16), (1, 2, 3, 4)), "WEBP", lossless=True))
    at = data.index(b"VP8L") + 8 + 1  # after the chunk header and the 0x2f signature
    bits = int.from_bytes(data[at : at + 4], "little")
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def _ispe(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    at = out.index(b"ispe")
    out[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(out)


def heic(width: int, height: int) -> bytes:
    return _ispe(encode(Image.new("RGB", (64, 64), (9, 9, 9)), "HEIF"), width, height)


def avif(width: int, height: int) -> bytes:
    return _ispe(encode(Image.new("RGB", (64, 64), (9, 9, 9)), "AVIF"), width, height)


def gif(width: int, height: int) -> bytes:
    """A 32x32 screen whose first frame claims width x height, 'restore to background'."""
    data = b"GIF89a" + struct.pack("<HHBBB", 32, 32, 0xF1, 3, 0)
    data += bytes.fromhex("000000ff000000ff00ffffff")
    data += b"\x21\xf9\x04\x08\x00\x00\x00\x00"
    data += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00\x3b"
    return data


def tiff(width: int, height: int, mode: str) -> bytes:
    """A TIFF of `mode` (I;16, 1, RGB...) whose size tags are rewritten."""
    data = bytearray(encode(Image.new(mode, (8, 8)), "TIFF", compression="tiff_deflate"))
    count = struct.unpack_from("<H", data, struct.unpack_from("<I", data, 4)[0])[0]
    start = struct.unpack_from("<I", data, 4)[0] + 2
    for n in range(count):
        at = start + 12 * n
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            value = width if tag == 256 else height
            if kind == 3:
                struct.pack_into("<H", data, at + 8, value)
            else:
                struct.pack_into("<I", data, at + 8, value)
    return bytes(data)


def progressive_jpeg(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("L", (16, 16), 128), "JPEG", progressive=True))
    at = data.index(b"\xff\xc2") + 5
    data[at : at + 4] = struct.pack(">HH", height, width)
    return bytes(data)


def baseline_jpeg(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16), (90, 90, 90)), "JPEG"))
    at = data.index(b"\xff\xc0") + 5
    data[at : at + 4] = struct.pack(">HH", height, width)
    return bytes(data)


# name -> (file, its extension). Every one is under the default pixel limit (250 MP) and
# over the default decode budget (384 MiB).
BOMBS: dict[str, Callable[[], tuple[bytes, str]]] = {
    "png-rgba": lambda: (png(10500, 10500), "png"),
    "png-16-bit": lambda: (png(12000, 12000, color_type=0, depth=16), "png"),
    "webp-lossless": lambda: (webp_lossless(15000, 15000), "webp"),
    "avif": lambda: (avif(15000, 15000), "avif"),
    "heic": lambda: (heic(15000, 15000), "heic"),
    "gif": lambda: (gif(15000, 15000), "gif"),
    "tiff-16-bit": lambda: (tiff(15000, 15000, "I;16"), "tif"),
    "tiff-1-bit": lambda: (tiff(15000, 15000, "1"), "tif"),
    "progressive-jpeg": lambda: (progressive_jpeg(15800, 15800), "jpg"),
}
