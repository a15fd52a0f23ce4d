"""Motion photos (a still with its video appended) and Live Photo stills' identifiers.

A Google/Android motion photo is a JPEG or HEIC whose XMP says where its MP4 starts:
`GCamera:MicroVideoOffset` (bytes from the end of the file, the older form) or a
`Container:Directory` whose `Item:Semantic="MotionPhoto"` item gives its `Item:Length`
(items are laid end to end after the primary image). The range is trusted only once an
`ftyp` box of a video brand is found where it says. The XMP is read from the header
that scan.py has walked under its caps, and parsed with bounded regular expressions.

An iPhone Live Photo still carries the pairing key of its MOV in Apple's maker note
(tag 17, an ASCII UUID), read here from the EXIF Pillow exposes, bounded.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from . import exif
from .formats import BAD_IMAGE_ERRORS, SNIFF_BYTES, Kind, open_image, sniff, sniff_video
from .scan import TooComplex, walk

MAX_XMP = 256 * 1024
MAX_ITEMS = 16
_MICRO_VIDEO_OFFSET = re.compile(rb"GCamera:MicroVideoOffset(?:=\"|>)\s*(\d{1,12})")
_ITEM = re.compile(rb"<Container:Item\b([^>]{0,2048})>")
_ATTRIBUTE = re.compile(rb"(\w+):(\w+)=\"([^\"]{0,256})\"")
_TAG_MAKER_NOTE = 0x927C
_APPLE_MAKER_NOTE = b"Apple iOS\x00"
_APPLE_CONTENT_ID = 17
_MAX_MAKER_ENTRIES = 256


@dataclass(frozen=True)
class EmbeddedVideo:
    offset: int  # first byte of the MP4 within the file
    length: int  # its bytes, to the end of the file or of its item
    kind: Kind  # the video's format, from its ftyp


def find_motion_video(path: Path) -> EmbeddedVideo | None:
    """The byte range of the video inside a motion photo, or None when it is not one (or
    its XMP points where there is no video)."""
    with path.open("rb") as f:
        kind = sniff(f.read(SNIFF_BYTES))
        if kind is None or kind.format not in ("JPEG", "HEIF"):
            return None
        try:
            walk(f, kind)
            with open_image(f, kind) as img:
                xmp = img.info.get("xmp")
        except TooComplex:
            return None
        except BAD_IMAGE_ERRORS:
            return None
        return embedded_video(f, xmp)


def embedded_video(f: BinaryIO, xmp: object) -> EmbeddedVideo | None:
    """The video part that `xmp` (the still's, as Pillow gives it) declares in the open
    file `f`, once an `ftyp` of a video is found where it says; None otherwise."""
    if not isinstance(xmp, bytes) or len(xmp) > MAX_XMP:
        return None
    size = os.fstat(f.fileno()).st_size
    found = video_range(xmp, size)
    if found is None:
        return None
    offset, length = found
    f.seek(offset)
    video = sniff_video(f.read(64))
    if video is None:
        return None
    return EmbeddedVideo(offset, length, video)


def video_range(xmp: bytes, size: int) -> tuple[int, int] | None:
    """(offset, length) of the video part that `xmp` declares in a file of `size` bytes."""
    items = [dict(_attributes(m[1])) for m in _ITEM.finditer(xmp, 0, MAX_XMP)][:MAX_ITEMS]
    trailing = 0
    for position in range(len(items) - 1, 0, -1):  # the first item is the primary image
        item = items[position]
        length, padding = _number(item.get("Length")), _number(item.get("Padding")) or 0
        if length is None:
            break
        trailing += length + padding
        if item.get("Semantic") == "MotionPhoto":
            start = size - trailing
            return (start, length) if start > 0 and start + length <= size else None
    match = _MICRO_VIDEO_OFFSET.search(xmp, 0, MAX_XMP)
    if match is not None:
        from_end = int(match[1])
        if 0 < from_end < size:
            return size - from_end, from_end
    return None


def _attributes(text: bytes) -> list[tuple[str, str]]:
    return [(m[2].decode(), m[3].decode("utf-8", "replace")) for m in _ATTRIBUTE.finditer(text)]


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() and len(text) <= 12 else None


def live_photo_identifier(img: Image.Image) -> str | None:
    """The Apple `ContentIdentifier` of a Live Photo still (maker note tag 17), if any."""
    return live_identifier(exif.read_exif(img))


def live_identifier(facts: Image.Exif | None) -> str | None:
    """The same, from EXIF already read (metadata.py reads it once for every fact)."""
    note = exif.get(exif.sub_ifd(facts, exif.IFD_EXIF), _TAG_MAKER_NOTE)
    return apple_content_identifier(note) if isinstance(note, bytes) else None


def apple_content_identifier(note: bytes) -> str | None:
    """Tag 17 of Apple's maker note: "Apple iOS\\0", a version, "MM", then a big-endian
    IFD whose offsets count from the start of the note."""
    if not note.startswith(_APPLE_MAKER_NOTE) or note[12:14] != b"MM":
        return None
    try:
        (count,) = struct.unpack_from(">H", note, 14)
        for n in range(min(count, _MAX_MAKER_ENTRIES)):
            tag, kind, length, value = struct.unpack_from(">HHI4s", note, 16 + 12 * n)
            if tag != _APPLE_CONTENT_ID or kind != 2:
                continue
            data = (
                value if length <= 4 else note[(at := struct.unpack(">I", value)[0]) : at + length]
            )
            text = data[:length].split(b"\x00", 1)[0].decode("ascii", "strict").strip()
            return text[:256] or None
    except (struct.error, UnicodeDecodeError):
        return None
    return None
