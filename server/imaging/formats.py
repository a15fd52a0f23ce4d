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

# Videos: told apart from images by the same first bytes, kept as sent, read by PyAV
# (video.py). `format` is the family the header walk and the demuxer expect.
MP4 = Kind("MP4", "video/mp4")
M4V = Kind("MP4", "video/x-m4v")
MOV = Kind("MOV", "video/quicktime")
THREE_GP = Kind("3GP", "video/3gpp")
THREE_G2 = Kind("3GP", "video/3gpp2")
WEBM = Kind("WEBM", "video/webm")
MATROSKA = Kind("MATROSKA", "video/x-matroska")
VIDEO_FORMATS = frozenset({"MP4", "MOV", "3GP", "WEBM", "MATROSKA"})

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
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1"}
    | {b"hvc1", b"hev1", b"dash", b"mmp4", b"MSNV", b"XAVC", b"f4v "}
)
_M4V_BRANDS = frozenset({b"M4V ", b"M4VH", b"M4VP"})
# Audio-only and other non-video members of the family: never a video, whatever their
# compatible brands say.
_NOT_VIDEO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ", b"crx ", b"jp2 "})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE = b"\x42\x82"

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


def sniff_media(head: bytes) -> Kind | None:
    """An accepted image or video format from its leading bytes; images win a tie (a
    HEIC or AVIF brand is an image whatever else its `ftyp` lists)."""
    return sniff(head) or sniff_video(head)


def is_video(kind: Kind) -> bool:
    return kind.format in VIDEO_FORMATS


def sniff_video(head: bytes) -> Kind | None:
    """MP4, MOV, 3GP (ISO-BMFF `ftyp` brands) or WebM/Matroska (the EBML DocType), from
    the leading bytes. Not a proof of a video: the header walk and the demuxer decide."""
    if head.startswith(_EBML_MAGIC):
        return _sniff_ebml(head)
    brands = _ftyp_brands(head)
    if brands is None or _sniff_iso_bmff(head) is not None:
        return None
    major, compatible = brands
    if major in _NOT_VIDEO_BRANDS:
        return None
    for brand in [major, *compatible]:
        if brand == b"qt  ":
            return MOV
        if brand.startswith(b"3g2"):
            return THREE_G2
        if brand.startswith((b"3gp", b"3gg", b"3gs", b"3ge")):
            return THREE_GP
        if brand in _M4V_BRANDS:
            return M4V
        if brand in _MP4_BRANDS:
            return MP4
    return None


def _sniff_ebml(head: bytes) -> Kind | None:
    """The DocType inside the EBML header element: `webm` or `matroska`."""
    at = head.find(_EBML_DOCTYPE, 4, 64)
    if at < 0 or at + 3 > len(head):
        return None
    size_byte = head[at + 2]
    if not size_byte & 0x80:  # DocType is short: a one-byte size is all a muxer writes
        return None
    size = size_byte & 0x7F
    doctype = head[at + 3 : at + 3 + size].rstrip(b"\x00")
    if doctype == b"webm":
        return WEBM
    if doctype == b"matroska":
        return MATROSKA
    return None


def _ftyp_brands(head: bytes) -> tuple[bytes, list[bytes]] | None:
    """The major and compatible brands of a leading `ftyp` box, or None."""
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
    return major, compatible


def _sniff_iso_bmff(head: bytes) -> Kind | None:
    brands = _ftyp_brands(head)
    if brands is None:
        return None
    major, compatible = brands
    for group in ([major], compatible):
        if any(brand in _AVIF_BRANDS for brand in group):
            return AVIF
        if any(brand in _HEIC_BRANDS for brand in group):
            return HEIC
    if major in _HEIF_BRANDS or any(brand in _HEIF_BRANDS for brand in compatible):
        return HEIF
    return None


def open_image(f: BinaryIO, kind: Kind) -> ImageFile.ImageFile:
    f.seek(0)
    return Image.open(f, formats=_PILLOW_FORMATS[kind.format])
