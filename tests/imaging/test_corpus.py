"""The imaging code against the shared corpus of real camera files."""

from pathlib import Path

import pytest
from PIL import Image

from server.imaging import SNIFF_BYTES, Kind, make_thumbnail, read_metadata, sniff
from tests.imaging.pictures import (
    CORPUS,
    CORPUS_FILES,
    GRID,
    JPEG,
    MAX_PIXELS,
    PNG,
    assert_clean_jpeg,
    mean_difference,
    needs_corpus,
    no_stray_files,
    thumb_of,
)

# --- the shared corpus -----------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_corpus_file(path: Path, tmp_path: Path) -> None:
    kind = sniff(path.read_bytes()[:SNIFF_BYTES])
    assert kind is not None

    metadata = read_metadata(path, kind, MAX_PIXELS)
    assert metadata.mime == kind.mime

    dest = tmp_path / "thumb.jpg"
    made = make_thumbnail(path, dest, GRID, MAX_PIXELS)
    assert made is dest.exists()
    no_stray_files(tmp_path, *(["thumb.jpg"] if made else []))
    if made:
        assert metadata.decodable
        assert_clean_jpeg(dest)
        with Image.open(dest) as thumb:
            assert max(thumb.size) <= GRID
            assert metadata.width is not None and metadata.height is not None
            assert (thumb.width >= thumb.height) == (metadata.width >= metadata.height)


def corpus(name: str) -> Path:
    return CORPUS / name


@needs_corpus
@pytest.mark.parametrize("orientation", range(2, 9))
def test_corpus_orientations_come_out_upright(orientation: int, tmp_path: Path) -> None:
    reference = thumb_of(corpus("hopper.jpg"), tmp_path)
    thumb = thumb_of(corpus(f"hopper_orientation_{orientation}.jpg"), tmp_path)
    assert thumb.size == reference.size
    upright = mean_difference(thumb, reference)
    assert upright < 8
    for method in Image.Transpose:
        assert mean_difference(thumb, reference.transpose(method)) > upright + 20, method


@needs_corpus
@pytest.mark.parametrize("name", ["decompression_bomb.gif", "png_decompression_dos.png"])
def test_corpus_bombs(name: str, tmp_path: Path) -> None:
    path = corpus(name)
    kind = sniff(path.read_bytes()[:SNIFF_BYTES])
    assert kind is not None
    assert read_metadata(path, kind, MAX_PIXELS).decodable is False
    assert make_thumbnail(path, tmp_path / "thumb.jpg", GRID, MAX_PIXELS) is False
    no_stray_files(tmp_path)


@needs_corpus
def test_corpus_gps(tmp_path: Path) -> None:
    path = corpus("exif_gps.jpg")
    metadata = read_metadata(path, JPEG, MAX_PIXELS)
    assert metadata.has_gps
    with Image.open(path) as img:
        assert img.getexif().get_ifd(0x8825)
    dest = tmp_path / "thumb.jpg"
    assert make_thumbnail(path, dest, GRID, MAX_PIXELS)
    assert_clean_jpeg(dest)


@needs_corpus
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("hopper.heif", Kind("HEIF", "image/heic")),
        ("hopper.avif", Kind("AVIF", "image/avif")),
        ("sugarshack.mpo", Kind("MPO", "image/jpeg")),
        ("ultrahdr.jpg", JPEG),
        ("pil_sample_cmyk.jpg", JPEG),
        ("transparent.png", PNG),
        ("hopper.webp", Kind("WEBP", "image/webp")),
    ],
)
def test_corpus_formats(name: str, kind: Kind, tmp_path: Path) -> None:
    path = corpus(name)
    sniffed = sniff(path.read_bytes()[:SNIFF_BYTES])
    assert sniffed == (JPEG if kind.format == "MPO" else kind)
    assert sniffed is not None
    metadata = read_metadata(path, sniffed, MAX_PIXELS)
    assert (metadata.format, metadata.mime, metadata.decodable) == (kind.format, kind.mime, True)
    thumb = thumb_of(path, tmp_path)
    assert thumb.mode == "RGB"
    assert max(thumb.size) == min(GRID, max(metadata.width or 0, metadata.height or 0))


@needs_corpus
def test_corpus_camera_metadata() -> None:
    flower = read_metadata(corpus("flower.jpg"), JPEG, MAX_PIXELS)
    assert (flower.camera_make, flower.camera_model) == ("Canon", "Canon PowerShot S40")
    assert flower.taken_at == "2003-12-14T12:01:44"
    assert (flower.width, flower.height, flower.orientation) == (480, 360, 1)
    ultrahdr = read_metadata(corpus("ultrahdr.jpg"), JPEG, MAX_PIXELS)
    assert ultrahdr.taken_at == "2024-05-07T09:33:04+08:00"
    assert (ultrahdr.camera_make, ultrahdr.camera_model) == ("Google", "Pixel 6")
    mpo = read_metadata(corpus("sugarshack.mpo"), JPEG, MAX_PIXELS)
    assert (mpo.camera_make, mpo.width, mpo.height) == ("Nintendo", 640, 480)
