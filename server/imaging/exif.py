"""EXIF facts read from what the headers already gave, never from decoded pixels."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from PIL import Image

from .formats import BAD_IMAGE_ERRORS

TAG_ORIENTATION = 0x0112
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
_TAG_DATETIME = 0x0132
IFD_EXIF = 0x8769
IFD_GPS = 0x8825
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


def read_exif(img: Image.Image) -> Image.Exif | None:
    try:
        # Image.getexif of the base class reads what the headers already gave. PNG's
        # override would load() the whole image to look for an eXIf chunk after IDAT.
        return Image.Image.getexif(img)
    except BAD_IMAGE_ERRORS:
        return None


def get(mapping: Mapping[int, Any] | None, tag: int) -> object:
    if mapping is None:
        return None
    try:
        return mapping.get(tag)
    except BAD_IMAGE_ERRORS:
        return None


def sub_ifd(exif: Image.Exif | None, tag: int) -> Mapping[int, Any]:
    if exif is None:
        return {}
    try:
        return exif.get_ifd(tag)
    except BAD_IMAGE_ERRORS:
        return {}


def orientation(exif: Image.Exif | None) -> int | None:
    value = get(exif, TAG_ORIENTATION)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return None


def text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip(_STRIPPED) or None


def taken_at(ifd0: Image.Exif | None, exif_ifd: Mapping[int, Any]) -> str | None:
    """The first valid of DateTimeOriginal, DateTimeDigitized and DateTime, with its offset."""
    candidates = (
        (get(exif_ifd, _TAG_DATETIME_ORIGINAL), get(exif_ifd, _TAG_OFFSET_TIME_ORIGINAL)),
        (get(exif_ifd, _TAG_DATETIME_DIGITIZED), get(exif_ifd, _TAG_OFFSET_TIME_DIGITIZED)),
        (get(ifd0, _TAG_DATETIME), get(exif_ifd, _TAG_OFFSET_TIME)),
    )
    for value, offset in candidates:
        taken = _exif_datetime(text(value))
        if taken is not None:
            return taken + (_exif_offset(text(offset)) or "")
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
