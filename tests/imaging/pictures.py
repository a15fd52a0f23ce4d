"""Pictures made to order for the imaging tests, and how their thumbnails are judged."""

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from server.imaging import THUMBNAIL_SIZES, Kind, make_thumbnail

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CORPUS_FILES = sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")

MAX_PIXELS = 250_000_000
GRID = THUMBNAIL_SIZES["grid"]

JPEG = Kind("JPEG", "image/jpeg")
PNG = Kind("PNG", "image/png")
GIF = Kind("GIF", "image/gif")

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def split_image(
    size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...], mode: str = "RGB"
) -> Image.Image:
    """Left half one colour, right half another, so any rotation or flip shows."""
    img = Image.new(mode, size, right)
    img.paste(left, (0, 0, size[0] // 2, size[1]))
    return img


def build_exif(
    *,
    orientation: int | None = None,
    make: str | None = None,
    model: str | None = None,
    datetime: str | None = None,
    original: str | None = None,
    digitized: str | None = None,
    offset_original: str | None = None,
    offset_digitized: str | None = None,
    gps: bool = False,
) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in ((0x0112, orientation), (0x010F, make), (0x0110, model), (0x0132, datetime)):
        if value is not None:
            exif[tag] = value
    exif_ifd = exif.get_ifd(0x8769)
    for tag, value in (
        (0x9003, original),
        (0x9004, digitized),
        (0x9011, offset_original),
        (0x9012, offset_digitized),
    ):
        if value is not None:
            exif_ifd[tag] = value
    if gps:
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd[1] = "N"
        gps_ifd[2] = (22.0, 32.0, 15.5)
        gps_ifd[3] = "E"
        gps_ifd[4] = (114.0, 10.0, 3.0)
    return exif


def jpeg_with_exif(path: Path, exif: Image.Exif, size: tuple[int, int] = (400, 200)) -> Path:
    return write(path, encode(split_image(size, RED, BLUE), "JPEG", quality=95, exif=exif))


def thumb_of(source: Path, tmp_path: Path, size: int = GRID) -> Image.Image:
    dest = tmp_path / "thumbs" / f"{source.stem}.jpg"
    assert make_thumbnail(source, dest, size, MAX_PIXELS)
    with Image.open(dest) as img:
        img.load()
        return img


def assert_clean_jpeg(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\xff\xd8\xff")
    assert b"Exif" not in data
    assert b"ICC_PROFILE" not in data
    assert b"http://ns.adobe.com/xap" not in data
    with Image.open(path) as img:
        assert img.format == "JPEG"
        assert img.mode == "RGB"
        assert not img.getexif()
        assert not img.getexif().get_ifd(0x8825)
        assert "comment" not in img.info
        assert "icc_profile" not in img.info


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    a = a.convert("RGB").resize((32, 32), Image.Resampling.BOX)
    b = b.convert("RGB").resize((32, 32), Image.Resampling.BOX)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def no_stray_files(folder: Path, *expected: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)


def is_close(pixel: object, colour: tuple[int, ...], tolerance: int = 24) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


# --- sniff -----------------------------------------------------------------------------


def _small() -> Image.Image:
    return split_image((64, 48), RED, BLUE)
