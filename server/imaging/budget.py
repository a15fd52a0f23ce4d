"""How much memory a decode will take, decided from the header before any pixel.

    bytes = pixels x bytes per pixel as Pillow stores them
            (+ pixels x bands x bytes per sample: the buffer a library decodes into first)
            (+ one converted copy when the mode cannot be resized as it is)
            (+ libjpeg's whole-image coefficients for progressive JPEGs)

The pixels are those decoded: a JPEG is drafted first (libjpeg scales by 1/2, 1/4 or 1/8
while decoding), so a 200-MP phone photo decodes at 25 MP x 1/8 of its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from .scan import Header

MiB = 1024 * 1024
# A 48-MP HEIC (8064 x 6048) takes 341 MB (measured: libheif's RGB, then Pillow's copy);
# with the server and one worker, that still fits a 1 GB box.
DEFAULT_BUDGET = 384 * MiB

# Pillow keeps 1-band 8-bit modes in a byte a pixel, 16-bit ones in two, and everything
# else (RGB and LA included) in four.
_ONE_BYTE = frozenset({"1", "L", "P"})
# Modes Image.resize takes as they are; any other is converted (a full copy) first.
RESIZABLE = frozenset({"RGB", "RGBA", "L", "LA", "CMYK", "I", "F"})
# Decoders that fill a buffer of their own (8 bits a sample) and copy it into Pillow's.
_COPYING_DECODERS = frozenset({"WEBP", "HEIF", "AVIF"})
# libtiff may read a whole RGBA raster for the formats Pillow cannot unpack itself.
_RASTER_DECODERS = frozenset({"TIFF"})
_COEFFICIENT_BYTES = 2  # a JCOEF


@dataclass(frozen=True)
class Estimate:
    bytes: int
    detail: str


def bytes_per_pixel(mode: str) -> int:
    if mode in _ONE_BYTE:
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def draft_box(img: Image.Image, size: int) -> None:
    """Ask libjpeg to decode at the smallest scale that still covers `size` x `size`."""
    if isinstance(img, JpegImageFile):
        img.draft("RGB", (size, size))


def estimate(img: Image.Image, fmt: str, header: Header, full_size: tuple[int, int]) -> Estimate:
    """Peak bytes of decoding `img` (already drafted) and readying it for resizing."""
    pixels = img.width * img.height
    stored = bytes_per_pixel(img.mode)
    total = pixels * stored
    detail = f"{img.width}x{img.height} {img.mode} ({stored} B/px)"
    if fmt in _COPYING_DECODERS:
        total += pixels * len(img.getbands())
        detail += " + the decoder's buffer"
    elif fmt in _RASTER_DECODERS:
        total += pixels * 4
        detail += " + libtiff's raster"
    if img.mode not in RESIZABLE:
        total += pixels * 4
        detail += " + a converted copy"
    if header.jpeg_whole_coefficients:
        bands = len(img.getbands())
        total += full_size[0] * full_size[1] * bands * _COEFFICIENT_BYTES
        detail += " + whole-image coefficients"
    return Estimate(total, detail)


def rough(width: int | None, height: int | None, fmt: str, size: int, budget: int) -> int:
    """An upper guess of a decode's bytes from the catalog's facts alone (no header read):
    what the decoding pool weighs jobs by, so workers share one budget."""
    if not width or not height:
        return budget
    pixels = width * height
    if fmt in ("JPEG", "MPO"):
        scale = next((s for s in (8, 4, 2) if min(width, height) // s >= size), 1)
        # The drafted image (4 B/px) and, if it is progressive, the coefficients.
        return min(budget, pixels // (scale * scale) * 4 + pixels * 6)
    return min(budget, pixels * 12)


# Frames a video decoder holds besides the one it hands out: H.264 and HEVC keep at most
# 6 reference frames at their largest sizes (a level's DPB), VP9 8 reference slots, and
# FFmpeg's frame pool a spare or two.
VIDEO_REFERENCE_FRAMES = 8
# 4:4:4 at 16 bits a sample: what is assumed when the header does not give a pixel format.
_WORST_VIDEO_BITS = 48


def video_frame(width: int, height: int, bits_per_pixel: int | None) -> Estimate:
    """Peak bytes of decoding one video frame and turning it into a Pillow image:

    frames = width x height x bits per pixel / 8 x (1 + the decoder's reference frames)
    + width x height x 3 (the RGB frame swscale writes) + x 4 (Pillow's RGB image)
    """
    bits = bits_per_pixel or _WORST_VIDEO_BITS
    pixels = width * height
    frames = pixels * bits // 8 * (1 + VIDEO_REFERENCE_FRAMES)
    total = frames + pixels * 7
    detail = f"{width}x{height} at {bits} bits a pixel x {1 + VIDEO_REFERENCE_FRAMES} frames + RGB"
    return Estimate(total, detail)


def rough_video(width: int | None, height: int | None, budget: int) -> int:
    """The pool's weight of a poster job from the catalog's facts: the frame estimate at
    24 bits a pixel (10-bit 4:2:0, as HDR phone video is stored), capped at the budget."""
    if not width or not height:
        return budget
    return min(budget, video_frame(width, height, 24).bytes)
