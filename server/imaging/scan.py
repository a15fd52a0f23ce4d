"""Walks of a file's header structure, capped, before Pillow's own (slower) parsers see it.

Pillow parses JPEG markers, PNG chunks and GIF blocks in Python, one at a time: a small
hostile file with millions of them costs seconds of CPU and, for some, gigabytes. These
walks read only the lengths, stop at the first pixel data, and give up past a cap no
photo comes near. A file over a cap is kept as sent, without metadata or thumbnail.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from .formats import Kind

# Real photos carry a dozen segments before their pixels (EXIF, XMP, ICC in a few parts,
# MPF, quantisation and Huffman tables); a PNG a handful of chunks; a GIF a few blocks.
MAX_SEGMENTS = 1000
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_GIF_BLOCKS = 10_000
MAX_TIFF_TAGS = 4096
_CHUNK = 4096


class TooComplex(Exception):
    """The header has more structure than any photo: it is not parsed further."""


@dataclass(frozen=True)
class Header:
    """What the walk learnt that Pillow does not say before decoding."""

    gif_canvas: tuple[int, int] | None = None
    # A JPEG's frame header or a PNG's IHDR, read before Pillow: an image, however broken.
    dimensions: tuple[int, int] | None = None
    # libjpeg keeps every DCT coefficient of a progressive or multi-scan JPEG in memory.
    jpeg_whole_coefficients: bool = False
    bmp_rle: bool = False


def walk(f: BinaryIO, kind: Kind) -> Header:
    """Check the header of `f` against the caps (raises TooComplex), and what it tells."""
    end = f.seek(0, os.SEEK_END)
    f.seek(0)
    if kind.format in ("JPEG", "MPO"):
        return _jpeg(f, end)
    if kind.format == "PNG":
        return Header(dimensions=_png(f, end))
    if kind.format == "GIF":
        return Header(gif_canvas=gif_canvas(f))
    if kind.format == "BMP":
        return Header(bmp_rle=_bmp_rle(f))
    if kind.format == "TIFF":
        _tiff(f)
    return Header()


def _jpeg(f: BinaryIO, end: int) -> Header:
    """Segments from SOI to the first SOS, as Pillow's JPEG plugin walks them."""
    f.seek(2)
    segments = 0
    frame_components = 0
    progressive = False
    dimensions = None
    while True:
        segments += 1
        if f.tell() >= end:
            return Header(dimensions=dimensions)  # cut before its pixels: Pillow decides
        if segments > MAX_SEGMENTS or f.tell() > MAX_HEADER_BYTES:
            raise TooComplex(f"more than {MAX_SEGMENTS} JPEG segments or header bytes")
        byte = f.read(1)
        if byte != b"\xff":
            return Header(dimensions=dimensions)  # not a marker: Pillow decides
        marker = _skip_fill(f)
        if marker is None:
            return Header(dimensions=dimensions)
        if marker == 0x00 or 0xD0 <= marker <= 0xD9 or marker == 0x01:
            continue  # stuffing, RSTn, SOI, EOI, TEM: no length
        raw = f.read(2)
        if len(raw) < 2:
            return Header(dimensions=dimensions)
        length = struct.unpack(">H", raw)[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            frame = f.read(6)
            if len(frame) == 6:
                height, width = struct.unpack(">HH", frame[1:5])
                frame_components = frame[5]
                if width and height:
                    dimensions = (width, height)
            progressive = marker in (0xC2, 0xC6, 0xCA, 0xCE)
            f.seek(length - 2 - len(frame), os.SEEK_CUR)
            continue
        if marker == 0xDA:
            scan = f.read(1)
            interleaved = bool(scan) and scan[0] >= frame_components
            return Header(
                dimensions=dimensions, jpeg_whole_coefficients=progressive or not interleaved
            )
        f.seek(length - 2, os.SEEK_CUR)


def _skip_fill(f: BinaryIO) -> int | None:
    """The marker byte after any run of 0xFF fill bytes (read a block at a time)."""
    skipped = 0
    while True:
        block = f.read(_CHUNK)
        if not block:
            return None
        rest = block.lstrip(b"\xff")
        skipped += len(block) - len(rest)
        if skipped > MAX_HEADER_BYTES:
            raise TooComplex("a run of JPEG fill bytes")
        if rest:
            f.seek(-(len(rest) - 1), os.SEEK_CUR)
            return rest[0]


def _png(f: BinaryIO, end: int) -> tuple[int, int] | None:
    """The IHDR's size, when the first chunk is one; the chunks before IDAT, capped."""
    f.seek(8)
    dimensions = None
    for _ in range(MAX_SEGMENTS):
        raw = f.read(8)
        if len(raw) < 8 or raw[4:8] in (b"IDAT", b"IEND"):
            return dimensions
        length = struct.unpack(">I", raw[:4])[0]
        if raw[4:8] == b"IHDR" and f.tell() == 16 and length == 13:
            width, height = struct.unpack(">II", f.read(8))
            f.seek(-8, os.SEEK_CUR)
            if width and height:
                dimensions = (width, height)
        position = f.seek(length + 4, os.SEEK_CUR)
        if position >= end:
            return dimensions  # cut (or garbage) before its pixels: Pillow decides
        if position > MAX_HEADER_BYTES:
            break
    raise TooComplex(f"more than {MAX_SEGMENTS} PNG chunks or header bytes before the pixels")


def gif_canvas(f: BinaryIO) -> tuple[int, int]:
    """The size Pillow will give a GIF's first frame, found the way Pillow walks the blocks.

    Pillow's GIF plugin allocates and fills the first frame's disposal area inside
    Image.open, guarded only by the MAX_IMAGE_PIXELS this package turns off: a 50-byte GIF
    could make it fill gigabytes, so GIFs are measured before Pillow sees them.
    """
    f.seek(0)
    screen = f.read(13)
    if len(screen) < 13:
        raise SyntaxError("truncated GIF header")
    width, height, flags = struct.unpack_from("<HHB", screen, 6)
    if flags & 0x80:
        f.seek(3 << ((flags & 7) + 1), os.SEEK_CUR)
    blocks = 0
    while True:
        block = f.read(1)
        if not block or block == b";":
            return width, height
        if block == b"!":
            f.read(1)
            while (length := f.read(1)) and length[0]:
                blocks += 1
                if blocks > MAX_GIF_BLOCKS:
                    raise TooComplex(f"more than {MAX_GIF_BLOCKS} GIF blocks before a frame")
                f.seek(length[0], os.SEEK_CUR)
        elif block == b",":
            x0, y0, frame_width, frame_height = struct.unpack("<4H", f.read(8))
            return max(width, x0 + frame_width), max(height, y0 + frame_height)
        blocks += 1
        if blocks > MAX_GIF_BLOCKS:
            raise TooComplex(f"more than {MAX_GIF_BLOCKS} GIF blocks before a frame")


def _tiff(f: BinaryIO) -> None:
    head = f.read(16)
    if len(head) < 8:
        return
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    if big:
        if len(head) < 16:
            return
        f.seek(struct.unpack(order + "Q", head[8:16])[0])
        raw = f.read(8)
        count = struct.unpack(order + "Q", raw)[0] if len(raw) == 8 else 0
    else:
        f.seek(struct.unpack(order + "I", head[4:8])[0])
        raw = f.read(2)
        count = struct.unpack(order + "H", raw)[0] if len(raw) == 2 else 0
    if count > MAX_TIFF_TAGS:
        raise TooComplex(f"a TIFF directory of {count} tags")


def _bmp_rle(f: BinaryIO) -> bool:
    """BI_RLE8 or BI_RLE4: Pillow decodes those in Python, a pixel at a time."""
    head = f.read(34)
    if len(head) < 34 or int.from_bytes(head[14:18], "little") < 40:
        return False
    return int.from_bytes(head[30:34], "little") in (1, 2)
