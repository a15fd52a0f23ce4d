"""Pillow side of the server: sniffing, header metadata and JPEG thumbnails.

Every function here blocks; the server runs them in an executor.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import string
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import pillow_heif
from PIL import Image, ImageCms, ImageFile, ImageOps
from PIL.JpegImagePlugin import JpegImageFile

pillow_heif.register_heif_opener()
# This module enforces its own max_pixels check before any decode.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Kind:
    format: str
    mime: str


@dataclass(frozen=True)
class Metadata:
    format: str
    mime: str
    width: int | None
    height: int | None
    orientation: int | None
    taken_at: str | None
    camera_make: str | None
    camera_model: str | None
    has_gps: bool
    decodable: bool
    exif: bool | None = None  # any EXIF at all; None when the headers could not be read


SNIFF_BYTES: int = 4096

# Bump when thumbnails come out differently: it is in their file names and ETags.
THUMBNAIL_VERSION = 1
THUMBNAIL_SIZES: dict[str, int] = {"grid": 360, "preview": 1440}

_JPEG = Kind("JPEG", "image/jpeg")
_MPO = Kind("MPO", "image/jpeg")
_PNG = Kind("PNG", "image/png")
_GIF = Kind("GIF", "image/gif")
_WEBP = Kind("WEBP", "image/webp")
_HEIC = Kind("HEIF", "image/heic")
_HEIF = Kind("HEIF", "image/heif")
_AVIF = Kind("AVIF", "image/avif")
_TIFF = Kind("TIFF", "image/tiff")
_BMP = Kind("BMP", "image/bmp")

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
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
_BAD_IMAGE_ERRORS: tuple[type[Exception], ...] = (
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

_TAG_ORIENTATION = 0x0112
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_DATETIME = 0x0132
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_DATETIME_DIGITIZED = 0x9004
_TAG_OFFSET_TIME = 0x9010
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_TAG_OFFSET_TIME_DIGITIZED = 0x9012

_EXIF_DATETIME = re.compile(
    r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?", re.ASCII
)
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})", re.ASCII)
_STRIPPED = "\x00" + string.whitespace
_WHITE = (255, 255, 255)
_JPEG_QUALITY = 82


def sniff(head: bytes) -> Kind | None:
    """Identify an accepted image format from its leading bytes (no Pillow).

    JPEG and MPO share a head: this returns JPEG and read_metadata refines it to MPO.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP" and head[12:15] == b"VP8":
        return _WEBP
    if head.startswith(_TIFF_MAGICS):
        return _TIFF
    if (
        head.startswith(b"BM")
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    ):
        return _BMP
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
            return _AVIF
        if any(brand in _HEIC_BRANDS for brand in brands):
            return _HEIC
    if major in _HEIF_BRANDS or any(brand in _HEIF_BRANDS for brand in compatible):
        return _HEIF
    return None


def read_metadata(path: Path, kind: Kind, max_pixels: int) -> Metadata:
    """Read dimensions and EXIF facts from the headers of `path`, never decoding pixels.

    Never raises for bad image data: what cannot be read is None, and a file Pillow
    cannot open (or one over `max_pixels`) is reported with decodable=False. Failing to
    open `path` itself (missing, unreadable) is not bad data and raises OSError.
    """
    with path.open("rb") as f:
        try:
            if kind.format == "GIF":
                width, height = _gif_canvas(f)
                if width * height > max_pixels:
                    return _undecodable(kind, width, height)
            with _open(f, kind) as img:
                if img.format == "MPO":
                    kind = _MPO
                width, height = img.size
                exif = _read_exif(img)
        except _BAD_IMAGE_ERRORS:
            return _undecodable(kind)

    orientation = _orientation(exif)
    decodable = width * height <= max_pixels
    if orientation is not None and orientation >= 5:
        width, height = height, width
    exif_ifd = _sub_ifd(exif, _IFD_EXIF)
    return Metadata(
        format=kind.format,
        mime=kind.mime,
        width=width,
        height=height,
        orientation=orientation,
        taken_at=_taken_at(exif, exif_ifd),
        camera_make=_text(_get(exif, _TAG_MAKE)),
        camera_model=_text(_get(exif, _TAG_MODEL)),
        has_gps=bool(_sub_ifd(exif, _IFD_GPS)),
        decodable=decodable,
        exif=bool(exif),
    )


def _undecodable(kind: Kind, width: int | None = None, height: int | None = None) -> Metadata:
    return Metadata(
        format=kind.format,
        mime=kind.mime,
        width=width,
        height=height,
        orientation=None,
        taken_at=None,
        camera_make=None,
        camera_model=None,
        has_gps=False,
        decodable=False,
    )


def make_thumbnail(source: Path, dest: Path, size: int, max_pixels: int) -> bool:
    """Write an upright, metadata-free RGB JPEG of `source` fitting in `size` x `size`.

    Returns False, leaving nothing at `dest`, when `source` is not an accepted image, has
    more than `max_pixels` pixels, or cannot be decoded. Failing to open `source` or to
    write `dest` raises OSError.
    """
    if size < 1:
        raise ValueError(f"thumbnail size must be positive, not {size}")
    with source.open("rb") as f:
        try:
            kind = sniff(f.read(SNIFF_BYTES))
            thumbnail = _render_thumbnail(f, kind, size, max_pixels) if kind else None
        except _BAD_IMAGE_ERRORS:
            return False
    if thumbnail is None:
        return False
    _save_atomically(thumbnail, dest)
    return True


def _open(f: BinaryIO, kind: Kind) -> ImageFile.ImageFile:
    return Image.open(f, formats=_PILLOW_FORMATS[kind.format])


def _render_thumbnail(f: BinaryIO, kind: Kind, size: int, max_pixels: int) -> Image.Image | None:
    if kind.format == "GIF":
        width, height = _gif_canvas(f)
        if width * height > max_pixels:
            return None
    with _open(f, kind) as img:
        if img.width * img.height > max_pixels:
            return None
        if isinstance(img, JpegImageFile):
            img.draft("RGB", (size, size))
            _end_truncated_scan(img)
        img.load()
        icc_profile = img.info.get("icc_profile")
        # Unreadable EXIF: a thumbnail as stored beats none.
        with contextlib.suppress(*_BAD_IMAGE_ERRORS):
            ImageOps.exif_transpose(img, in_place=True)
        thumbnail = _resizable(img)
        thumbnail.thumbnail((size, size), Image.Resampling.LANCZOS)
        return _to_srgb(_flatten(thumbnail), icc_profile)


def _gif_canvas(f: BinaryIO) -> tuple[int, int]:
    """The size Pillow will give a GIF's first frame, found the way Pillow walks the blocks.

    Pillow's GIF plugin allocates and fills the first frame's disposal area inside
    Image.open, guarded only by the MAX_IMAGE_PIXELS this module turns off: a 50-byte GIF
    could make it fill gigabytes, so GIFs are measured before Pillow sees them.
    """
    f.seek(0)
    screen = f.read(13)
    if len(screen) < 13:
        raise SyntaxError("truncated GIF header")
    width, height, flags = struct.unpack_from("<HHB", screen, 6)
    if flags & 0x80:
        f.seek(3 << ((flags & 7) + 1), os.SEEK_CUR)
    while True:
        block = f.read(1)
        if not block or block == b";":
            return width, height
        if block == b"!":
            f.read(1)
            while (length := f.read(1)) and length[0]:
                f.seek(length[0], os.SEEK_CUR)
        elif block == b",":
            x0, y0, frame_width, frame_height = struct.unpack("<4H", f.read(8))
            return max(width, x0 + frame_width), max(height, y0 + frame_height)


def _end_truncated_scan(img: JpegImageFile) -> None:
    """Feed libjpeg an EOI marker when the file ends early, for this image only.

    Pillow does the same in JpegImageFile.load_read, but only when the process-wide
    ImageFile.LOAD_TRUNCATED_IMAGES is set, which would leak into every other thread
    decoding in the executor. A complete JPEG ends its scan at its own EOI and never
    reaches the padding; a cut one decodes what arrived and greys the rest.
    """
    read = img.load_read
    ended = False

    def load_read(read_bytes: int) -> bytes:
        nonlocal ended
        data = read(read_bytes)
        if not data and not ended:
            ended = True
            return b"\xff\xd9"
        return data

    img.load_read = load_read  # type: ignore[method-assign]


def _resizable(img: Image.Image) -> Image.Image:
    """Convert to a mode that resamples well: RGB, RGBA, L or CMYK."""
    if img.has_transparency_data:
        return img.convert("RGBA")
    if img.mode in ("RGB", "L", "CMYK"):
        return img
    if img.mode.startswith("I"):
        # 16-bit greyscale (PNG/TIFF): a plain convert would clip everything above 255.
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return img.convert("RGB")


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, _WHITE)
        background.paste(img, mask=img.getchannel("A"))
        return background
    if img.mode == "L":
        return img.convert("RGB")
    return img


def _to_srgb(img: Image.Image, icc_profile: object) -> Image.Image:
    if isinstance(icc_profile, bytes) and icc_profile:
        try:
            # A fresh sRGB profile per call (~0.1 ms): LittleCMS does not promise that one
            # profile handle may be used by several of the executor's threads at once.
            converted = ImageCms.profileToProfile(
                img,
                ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
        except _BAD_IMAGE_ERRORS:
            converted = None  # broken or mismatched profile: fall back to a plain convert
        if converted is not None:
            return converted
    return img if img.mode == "RGB" else img.convert("RGB")


def _save_atomically(img: Image.Image, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")
    # A fresh info dict: Pillow's JPEG writer copies a source COM comment from img.info.
    img.info = {}
    try:
        with tmp.open("xb") as f:
            img.save(f, "JPEG", quality=_JPEG_QUALITY, progressive=True)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_exif(img: Image.Image) -> Image.Exif | None:
    try:
        # Image.getexif of the base class reads what the headers already gave. PNG's
        # override would load() the whole image to look for an eXIf chunk after IDAT.
        return Image.Image.getexif(img)
    except _BAD_IMAGE_ERRORS:
        return None


def _get(mapping: Mapping[int, Any] | None, tag: int) -> object:
    if mapping is None:
        return None
    try:
        return mapping.get(tag)
    except _BAD_IMAGE_ERRORS:
        return None


def _sub_ifd(exif: Image.Exif | None, tag: int) -> Mapping[int, Any]:
    if exif is None:
        return {}
    try:
        return exif.get_ifd(tag)
    except _BAD_IMAGE_ERRORS:
        return {}


def _orientation(exif: Image.Exif | None) -> int | None:
    value = _get(exif, _TAG_ORIENTATION)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip(_STRIPPED) or None


def _taken_at(ifd0: Image.Exif | None, exif_ifd: Mapping[int, Any]) -> str | None:
    """The first valid of DateTimeOriginal, DateTimeDigitized and DateTime, with its offset."""
    candidates = (
        (_get(exif_ifd, _TAG_DATETIME_ORIGINAL), _get(exif_ifd, _TAG_OFFSET_TIME_ORIGINAL)),
        (_get(exif_ifd, _TAG_DATETIME_DIGITIZED), _get(exif_ifd, _TAG_OFFSET_TIME_DIGITIZED)),
        (_get(ifd0, _TAG_DATETIME), _get(exif_ifd, _TAG_OFFSET_TIME)),
    )
    for value, offset in candidates:
        taken = _exif_datetime(_text(value))
        if taken is not None:
            return taken + (_exif_offset(_text(offset)) or "")
    return None


def _exif_datetime(text: str | None) -> str | None:
    match = _EXIF_DATETIME.fullmatch(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second).isoformat()
    except ValueError:
        return None


def _exif_offset(text: str | None) -> str | None:
    match = _EXIF_OFFSET.fullmatch(text) if text else None
    if match is None or int(match[2]) > 14 or int(match[3]) >= 60:
        return None
    return match[0]
