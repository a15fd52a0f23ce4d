"""Which formats are accepted, told from their leading bytes, and opened only by their plugin."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import pillow_heif
from PIL import Image, ImageCms, ImageFile

pillow_heif.register_heif_opener()
# The decode budget (budget.py) is checked before any decode, from the header.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Kind:
    format: str
    mime: str


SNIFF_BYTES: int = 4096

JPEG = Kind("JPEG", "image/jpeg")
MPO = Kind("MPO", "image/jpeg")
PNG = Kind("PNG", "image/png")
GIF = Kind("GIF", "image/gif")
WEBP = Kind("WEBP", "image/webp")
HEIC = Kind("HEIF", "image/heic")
HEIF = Kind("HEIF", "image/heif")
AVIF = Kind("AVIF", "image/avif")
TIFF = Kind("TIFF", "image/tiff")
BMP = Kind("BMP", "image/bmp")

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})

# Pillow plugins tried for each sniffed format. Restricting Image.open to the sniffed
# plugin keeps every other decoder (EPS via Ghostscript, ...) away from uploads. Pillow's
# AVIF plugin also claims the generic `mif1`/`msf1` brands, so the two ISO-BMFF plugins
# fall back to each other.
_PILLOW_FORMATS: dict[str, tuple[str, ...]] = {
    "JPEG": ("JPEG",),
    "MPO": ("JPEG",),
    "PNG": ("PNG",),
    "GIF": ("GIF",),
    "WEBP": ("WEBP",),
    "HEIF": ("HEIF", "AVIF"),
    "AVIF": ("AVIF", "HEIF"),
    "TIFF": ("TIFF",),
    "BMP": ("BMP",),
}

# Pillow's decoders raise a long tail of types on hostile input. MemoryError and
# KeyboardInterrupt are deliberately not in this list.
BAD_IMAGE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    LookupError,
    EOFError,
    ArithmeticError,
    AttributeError,
    RuntimeError,
    struct.error,
    Image.DecompressionBombError,
    ImageCms.PyCMSError,
)


def sniff(head: bytes) -> Kind | None:
    """Identify an accepted image format from its leading bytes (no Pillow).

    JPEG and MPO share a head: this returns JPEG and read_metadata refines it to MPO.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP" and head[12:15] == b"VP8":
        return WEBP
    if head.startswith(TIFF_MAGICS):
        return TIFF
    if (
        head.startswith(b"BM")
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    ):
        return BMP
    return _sniff_iso_bmff(head)


def _sniff_iso_bmff(head: bytes) -> Kind | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[0:4], "big")
    header_size = 8
    if box_size == 1:
        box_size = int.from_bytes(head[8:16], "big")
        header_size = 16
    elif box_size == 0:
        box_size = len(head)
    if box_size < header_size + 8:
        return None
    end = min(box_size, len(head))
    major = head[header_size : header_size + 4]
    compatible = [head[i : i + 4] for i in range(header_size + 8, end - 3, 4)]
    for brands in ([major], compatible):
        if any(brand in _AVIF_BRANDS for brand in brands):
            return AVIF
        if any(brand in _HEIC_BRANDS for brand in brands):
            return HEIC
    if major in _HEIF_BRANDS or any(brand in _HEIF_BRANDS for brand in compatible):
        return HEIF
    return None


def open_image(f: BinaryIO, kind: Kind) -> ImageFile.ImageFile:
    f.seek(0)
    return Image.open(f, formats=_PILLOW_FORMATS[kind.format])
