"""Header metadata of an upload: the only imaging work on the request path.

Bounded: the header walk (scan.py) caps what Pillow's parsers are handed, and no pixel
is decoded. Whether the photo can be decoded at all is decided here, from the header,
by the same budget the decoding worker applies.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from . import exif
from .budget import DEFAULT_BUDGET, draft_box, estimate
from .formats import BAD_IMAGE_ERRORS, MPO, Kind, open_image
from .motion import embedded_video, live_identifier
from .scan import TooComplex, walk

MOTION_STILLS = ("JPEG", "HEIF")  # what a motion photo's still is (an Ultra HDR one: MPO)


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
    motion_offset: int | None = None  # a motion photo's MP4: its first byte in the file
    motion_length: int | None = None  # and its bytes (motion.py)
    live_id: str | None = None  # a Live Photo still's Apple ContentIdentifier (motion.py)


# What Pillow raises when the header is not what the format says (UnidentifiedImageError,
# a truncated read, a missing marker); its guards against hostile but real images raise
# ValueError or DecompressionBombError instead.
_NOT_AN_IMAGE = (OSError, SyntaxError, EOFError, struct.error)


GIF_RGBA = 4  # bytes a pixel once a GIF frame is converted to be resized


class NotAnImage(Exception):
    """The bytes start like an accepted format but its header does not parse: not media."""


def read_metadata(
    path: Path, kind: Kind, max_pixels: int, budget: int = DEFAULT_BUDGET, size: int = 1440
) -> Metadata:
    """Read dimensions and EXIF facts from the headers of `path`, never decoding pixels.

    `decodable` is False when the header is over a structural cap or refused by one of
    Pillow's guards, the image has more than `max_pixels` pixels, or decoding it to `size`
    would take more than `budget` bytes. Raises NotAnImage when neither Pillow nor the
    header walk makes out an image (a JPEG frame header, a PNG IHDR) at all, and OSError
    when `path` itself cannot be opened (missing, unreadable: not bad data).
    """
    with path.open("rb") as f:
        try:
            header = walk(f, kind)
        except TooComplex:
            return _undecodable(kind)
        except BAD_IMAGE_ERRORS as error:
            raise NotAnImage(str(error)) from None
        if header.gif_canvas is not None:
            width, height = header.gif_canvas
            # Pillow fills a GIF's first frame inside Image.open, here on the request
            # path: one that could not be decoded within the budget as RGBA is never
            # opened, so what opening may take stays under a quarter of the budget.
            if width * height > max_pixels or width * height * GIF_RGBA > budget:
                return _undecodable(kind, width, height)
        sniffed = kind
        try:
            with open_image(f, kind) as img:
                xmp = img.info.get("xmp")
                if img.format == "MPO":
                    kind = MPO
                width, height = img.size
                facts = exif.read_exif(img)
                decodable = not header.bmp_rle and width * height <= max_pixels
                if decodable:
                    draft_box(img, size)
                    needed = estimate(img, kind.format, header, (width, height))
                    decodable = needed.bytes <= budget
        except _NOT_AN_IMAGE as error:
            if header.dimensions is None:
                raise NotAnImage(str(error)) from None
            # Its frame header was read: a damaged image (a photo cut short), kept.
            return _undecodable(kind, *header.dimensions)
        except BAD_IMAGE_ERRORS:
            # It is an image, refused by one of Pillow's own guards (a text chunk bomb).
            return _undecodable(kind)
        # A motion photo (Google's, a JPEG or HEIC with its MP4 appended) is read here,
        # from the XMP just parsed: one header walk for both.
        motion = embedded_video(f, xmp) if sniffed.format in MOTION_STILLS else None
        if motion is not None and motion.kind.mime != "video/mp4":
            motion = None

    orientation = exif.orientation(facts)
    if orientation is not None and orientation >= 5:
        width, height = height, width
    exif_ifd = exif.sub_ifd(facts, exif.IFD_EXIF)
    return Metadata(
        format=kind.format,
        mime=kind.mime,
        width=width,
        height=height,
        orientation=orientation,
        taken_at=exif.taken_at(facts, exif_ifd),
        camera_make=exif.text(exif.get(facts, exif.TAG_MAKE)),
        camera_model=exif.text(exif.get(facts, exif.TAG_MODEL)),
        has_gps=bool(exif.sub_ifd(facts, exif.IFD_GPS)),
        decodable=decodable,
        exif=bool(facts),
        motion_offset=None if motion is None else motion.offset,
        motion_length=None if motion is None else motion.length,
        live_id=live_identifier(facts),
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
