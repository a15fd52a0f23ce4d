"""Thumbnails of generated files: upright, RGB, never upscaled, written atomically."""

from pathlib import Path

import pytest
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from server.imaging import SNIFF_BYTES, THUMBNAIL_SIZES, Kind, make_thumbnail, read_metadata, sniff
from tests.imaging.pictures import (
    BLUE,
    GRID,
    JPEG,
    MAX_PIXELS,
    PNG,
    RED,
    WHITE,
    _small,
    assert_clean_jpeg,
    build_exif,
    encode,
    is_close,
    jpeg_with_exif,
    mean_difference,
    no_stray_files,
    split_image,
    thumb_of,
    write,
)


def test_exif_jpeg_thumbnail_is_upright_and_stripped(tmp_path: Path) -> None:
    exif = build_exif(orientation=6, make="Canon", original="2023:07:14 18:30:05", gps=True)
    path = jpeg_with_exif(tmp_path / "photo.jpg", exif)
    dest = tmp_path / "out" / "grid.jpg"

    assert make_thumbnail(path, dest, GRID, MAX_PIXELS)

    assert_clean_jpeg(dest)
    no_stray_files(dest.parent, "grid.jpg")
    with Image.open(dest) as thumb:
        assert thumb.size == (180, 360)
        assert thumb.info.get("progressive") or thumb.info.get("progression")
        # Orientation 6 turns the stored image a quarter clockwise: its left half (red)
        # is shown on top.
        assert is_close(thumb.getpixel((90, 40)), RED)
        assert is_close(thumb.getpixel((90, 320)), BLUE)


@pytest.mark.parametrize(
    ("orientation", "expected", "top_left"),
    [
        (1, 1, RED),
        (2, 2, BLUE),
        (3, 3, BLUE),
        (4, 4, RED),
        (5, 5, RED),
        (7, 7, BLUE),
        (8, 8, BLUE),
        (0, None, RED),
        (9, None, RED),
    ],
)
def test_thumbnail_orientations(
    tmp_path: Path, orientation: int, expected: int | None, top_left: tuple[int, int, int]
) -> None:
    path = jpeg_with_exif(tmp_path / "photo.jpg", build_exif(orientation=orientation))
    turned = expected is not None and expected >= 5

    metadata = read_metadata(path, JPEG, MAX_PIXELS)
    assert metadata.orientation == expected
    assert (metadata.width, metadata.height) == ((200, 400) if turned else (400, 200))

    thumb = thumb_of(path, tmp_path)
    assert thumb.size == ((180, 360) if turned else (360, 180))
    assert is_close(thumb.getpixel((10, 10)), top_left)


def test_png_with_alpha_becomes_rgb_on_white(tmp_path: Path) -> None:
    img = split_image((800, 400), (0, 0, 0, 0), (255, 0, 0, 255), mode="RGBA")
    path = write(tmp_path / "alpha.png", encode(img, "PNG"))

    metadata = read_metadata(path, PNG, MAX_PIXELS)
    assert (metadata.format, metadata.width, metadata.height) == ("PNG", 800, 400)
    assert metadata.decodable

    thumb = thumb_of(path, tmp_path)
    assert thumb.mode == "RGB"
    assert thumb.size == (360, 180)
    assert is_close(thumb.getpixel((40, 90)), WHITE)
    assert is_close(thumb.getpixel((320, 90)), RED)


@pytest.mark.parametrize(
    "img",
    [
        Image.new("P", (50, 40), 3),
        Image.new("LA", (50, 40), (128, 255)),
        Image.new("L", (50, 40), 128),
        Image.new("1", (50, 40), 1),
        Image.new("CMYK", (50, 40), (0, 0, 0, 0)),
        Image.new("I;16", (50, 40), 128 * 256),
    ],
    ids=lambda img: img.mode,
)
def test_other_modes_become_rgb(tmp_path: Path, img: Image.Image) -> None:
    fmt = "JPEG" if img.mode == "CMYK" else "PNG"
    path = write(tmp_path / f"source.{fmt.lower()}", encode(img, fmt))
    thumb = thumb_of(path, tmp_path)
    assert thumb.mode == "RGB"
    assert thumb.size == (50, 40)
    expected = img.convert("RGB").getpixel((0, 0)) if img.mode != "I;16" else (128, 128, 128)
    assert isinstance(expected, tuple)
    assert is_close(thumb.getpixel((25, 20)), expected)


def test_thumbnail_never_upscales(tmp_path: Path) -> None:
    path = write(tmp_path / "small.jpg", encode(_small(), "JPEG"))
    assert thumb_of(path, tmp_path, size=THUMBNAIL_SIZES["preview"]).size == (64, 48)


def test_large_jpeg_to_grid(tmp_path: Path) -> None:
    img = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    path = write(tmp_path / "large.jpg", encode(img, "JPEG", quality=80))
    thumb = thumb_of(path, tmp_path)
    assert thumb.size == (360, 270)
    assert mean_difference(thumb, img) < 4


def test_jpeg_is_drafted_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = Image.linear_gradient("L").resize((2000, 1500)).convert("RGB")
    path = write(tmp_path / "large.jpg", encode(img, "JPEG"))
    drafts: list[tuple[str | None, object, bool, tuple[int, int]]] = []
    real_draft = JpegImageFile.draft

    def spy(
        self: JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        not_yet_loaded = bool(self.tile)
        result = real_draft(self, mode, size)
        drafts.append((mode, size, not_yet_loaded, self.size))
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    assert thumb_of(path, tmp_path).size == (360, 270)
    # libjpeg decodes at 1/4 scale: the smallest that still covers 360 px.
    assert drafts[0] == ("RGB", (360, 360), True, (500, 375))


def test_thumbnail_replaces_existing_dest_atomically(tmp_path: Path) -> None:
    first = write(tmp_path / "first.png", encode(Image.new("RGB", (40, 40), RED), "PNG"))
    second = write(tmp_path / "second.png", encode(Image.new("RGB", (40, 40), BLUE), "PNG"))
    dest = tmp_path / "deep" / "er" / "thumb.jpg"
    assert make_thumbnail(first, dest, GRID, MAX_PIXELS)
    assert make_thumbnail(second, dest, GRID, MAX_PIXELS)
    no_stray_files(dest.parent, "thumb.jpg")
    with Image.open(dest) as thumb:
        assert is_close(thumb.getpixel((20, 20)), BLUE)


def test_module_setup() -> None:
    assert Image.MAX_IMAGE_PIXELS is None
    assert "HEIF" in Image.OPEN
    assert Image.OPEN["AVIF"][0].__module__ == "PIL.AvifImagePlugin"
    assert SNIFF_BYTES == 4096
    assert THUMBNAIL_SIZES == {"grid": 360, "preview": 1440}


def test_generated_heif_and_avif(tmp_path: Path) -> None:
    img = split_image((200, 100), RED, BLUE)
    for fmt, mime in (("HEIF", "image/heic"), ("AVIF", "image/avif")):
        data = encode(img, fmt, quality=90)
        path = write(tmp_path / f"a.{fmt.lower()}", data)
        kind = sniff(data)
        assert kind == Kind(fmt, mime)
        metadata = read_metadata(path, kind, MAX_PIXELS)
        assert (metadata.format, metadata.mime, metadata.width, metadata.height) == (
            fmt,
            mime,
            200,
            100,
        )
        thumb = thumb_of(path, tmp_path)
        assert thumb.size == (200, 100)
        assert is_close(thumb.getpixel((20, 50)), RED, tolerance=40)
