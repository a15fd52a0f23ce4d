"""Derived images: every requested size from one decode, under the decode budget.

Blocking and CPU-bound: the server runs it in a decoding worker process (worker.py),
never in its own.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageCms
from PIL.JpegImagePlugin import JpegImageFile

from ..storage.held import held_temp
from . import exif
from .budget import DEFAULT_BUDGET, RESIZABLE, draft_box, estimate
from .formats import BAD_IMAGE_ERRORS, SNIFF_BYTES, open_image, sniff

__all__ = [
    "THUMBNAIL_SIZES",
    "THUMBNAIL_VERSION",
    "Limits",
    "make_thumbnail",
    "open_image",
    "render",
]
from .scan import TooComplex, walk

# Bump when thumbnails come out differently: it is in their file names and ETags.
THUMBNAIL_VERSION = 1
THUMBNAIL_SIZES: dict[str, int] = {"grid": 360, "preview": 1440}

_WHITE = (255, 255, 255)
_JPEG_QUALITY = 82
# Image.reduce by whole factors first, then LANCZOS over the last 2x: Pillow's thumbnail
# default, and indistinguishable from LANCZOS all the way.
_REDUCING_GAP = 2.0
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    budget: int = DEFAULT_BUDGET


def render(source: Path, outputs: Mapping[int, Path], limits: Limits) -> str | None:
    """Write an upright, metadata-free sRGB JPEG of `source` for each size (a box, px).

    Returns None when every output is written, else why none could be (nothing is
    left at any output). Failing to open `source` or to write an output raises OSError.
    """
    if not outputs or min(outputs) < 1:
        raise ValueError(f"thumbnail sizes must be positive, not {sorted(outputs)}")
    with source.open("rb") as f:
        try:
            made = _decode(f, sorted(outputs, reverse=True), limits)
        except TooComplex as error:
            return str(error)
        except BAD_IMAGE_ERRORS as error:
            return f"cannot be decoded: {error}"
    if isinstance(made, str):
        return made
    for size, img in made:
        _save_atomically(img, outputs[size])
    return None


def make_thumbnail(source: Path, dest: Path, size: int, max_pixels: int) -> bool:
    """One size, under the default budget: True when `dest` was written."""
    return render(source, {size: dest}, Limits(max_pixels)) is None


def _decode(f: BinaryIO, sizes: list[int], limits: Limits) -> list[tuple[int, Image.Image]] | str:
    kind = sniff(f.read(SNIFF_BYTES))
    if kind is None:
        return "not an accepted image format"
    header = walk(f, kind)
    if header.bmp_rle:
        return "an RLE-compressed BMP (decoded in Python, pixel by pixel)"
    if header.gif_canvas is not None:
        width, height = header.gif_canvas
        if width * height > limits.max_pixels:
            return f"{width}x{height} is over the pixel limit"
    with open_image(f, kind) as img:
        full = img.size
        if full[0] * full[1] > limits.max_pixels:
            return f"{full[0]}x{full[1]} is over the pixel limit"
        orientation = exif.orientation(exif.read_exif(img))
        draft_box(img, sizes[0])
        needed = estimate(img, kind.format, header, full)
        if needed.bytes > limits.budget:
            return f"decoding needs {needed.bytes} bytes ({needed.detail}), over the budget"
        icc_profile = img.info.get("icc_profile")
        _load(img)
        current: Image.Image = _resizable(img)
        shrunk = []
        for size in sizes:
            current = _shrink(current, size)
            if current is img:
                current = img.copy()  # small already, and about to be closed
            shrunk.append((size, current))
    # The decoded image is closed and dropped here: only the small ones are kept.
    return [(size, _finish(thumb, icc_profile, orientation)) for size, thumb in shrunk]


def _load(img: Image.Image) -> None:
    """Decode, ending a JPEG's scan with an EOI marker when the file stops early.

    Pillow does the same in JpegImageFile.load_read, but only when the process-wide
    ImageFile.LOAD_TRUNCATED_IMAGES is set. A complete JPEG ends its scan at its own
    EOI and never reaches the padding; a cut one decodes what arrived and greys the
    rest. The reader refers to the image: it is removed after the decode, or the pair
    would be a reference cycle holding the decoded pixels until a full collection.
    """
    if not isinstance(img, JpegImageFile):
        img.load()
        return
    img.load_read = _EndingReader(img.load_read)  # type: ignore[method-assign]
    try:
        img.load()
    finally:
        del img.load_read


class _EndingReader:
    def __init__(self, read: object) -> None:
        self._read = read
        self._ended = False

    def __call__(self, read_bytes: int) -> bytes:
        data: bytes = self._read(read_bytes)  # type: ignore[operator]
        if not data and not self._ended:
            self._ended = True
            return b"\xff\xd9"
        return data


def _resizable(img: Image.Image) -> Image.Image:
    """A mode that resamples well: RGB, RGBA, L, LA, CMYK or I (16-bit, scaled later)."""
    if img.mode in RESIZABLE:
        return img
    if img.mode.startswith("I;16"):
        # A plain convert to L would clip everything above 255.
        return img.convert("I")
    if img.has_transparency_data:
        return img.convert("RGBA")
    return img.convert("RGB")


def _shrink(img: Image.Image, box: int) -> Image.Image:
    """Fit in box x box as Image.thumbnail does (never larger), as a new image."""
    width, height = img.size
    if width <= box and height <= box:
        return img
    aspect = width / height
    if aspect >= 1:
        size = (box, _round_aspect(box / aspect, lambda n: 0 if n == 0 else abs(aspect - box / n)))
    else:
        size = (_round_aspect(box * aspect, lambda n: abs(aspect - n / box)), box)
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)


def _round_aspect(number: float, key: Callable[[int], float]) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)


def _finish(img: Image.Image, icc_profile: object, orientation: int | None) -> Image.Image:
    if img.mode == "I":
        img = img.point(lambda v: v * (1 / 256)).convert("L")
    img = _to_srgb(_flatten(img), icc_profile)
    method = _TRANSPOSE.get(orientation or 1)
    return img.transpose(method) if method is not None else img


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode == "LA":
        img = img.convert("RGBA")
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
            # profile handle may be used by several threads at once.
            converted = ImageCms.profileToProfile(
                img,
                ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
        except BAD_IMAGE_ERRORS:
            converted = None  # broken or mismatched profile: fall back to a plain convert
        if converted is not None:
            return converted
    return img if img.mode == "RGB" else img.convert("RGB")


def _save_atomically(img: Image.Image, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A fresh info dict: Pillow's JPEG writer copies a source COM comment from img.info.
    img.info = {}
    # Locked while written (held.py): a clean-up, in this server or another, spares it.
    with held_temp(dest) as f:
        img.save(f, "JPEG", quality=_JPEG_QUALITY, progressive=True)
