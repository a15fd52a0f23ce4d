"""Files the imaging code refuses: truncated, too large, bombs, not images at all."""

import random
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from server.imaging import NotAnImage, make_thumbnail, read_metadata, sniff
from tests.imaging.pictures import (
    GIF,
    GRID,
    JPEG,
    MAX_PIXELS,
    PNG,
    RED,
    _small,
    assert_clean_jpeg,
    encode,
    mean_difference,
    no_stray_files,
    write,
)


def test_truncated_jpeg(tmp_path: Path) -> None:
    original = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    data = encode(original, "JPEG", quality=90)
    path = write(tmp_path / "cut.jpg", data[: len(data) // 2])

    metadata = read_metadata(path, JPEG, MAX_PIXELS)
    assert (metadata.width, metadata.height) == (640, 480)

    dest = tmp_path / "out" / "cut.jpg"
    made = make_thumbnail(path, dest, GRID, MAX_PIXELS)
    # The rows that arrived are kept; what is missing is filled in.
    assert made
    assert_clean_jpeg(dest)
    no_stray_files(dest.parent, "cut.jpg")
    with Image.open(dest) as thumb:
        assert thumb.size == (360, 270)
        expected_top = original.resize((360, 270)).crop((0, 0, 360, 60))
        assert mean_difference(thumb.crop((0, 0, 360, 60)), expected_top) < 8
    # The recovery is per image: the process-wide switch is left alone.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_jpeg_cut_inside_its_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "stub.jpg", encode(_small(), "JPEG")[:40])
    with pytest.raises(NotAnImage):
        read_metadata(path, JPEG, MAX_PIXELS)
    assert not make_thumbnail(path, tmp_path / "out" / "stub.jpg", GRID, MAX_PIXELS)
    assert not (tmp_path / "out" / "stub.jpg").exists()


def test_over_max_pixels_is_refused_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.png", encode(Image.new("RGB", (20, 20), RED), "PNG"))

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)

    metadata = read_metadata(path, PNG, max_pixels=100)
    assert (metadata.width, metadata.height, metadata.decodable) == (20, 20, False)
    dest = tmp_path / "out" / "big.jpg"
    assert make_thumbnail(path, dest, GRID, max_pixels=100) is False
    assert not dest.exists()
    # And the same header read is what a file within the limit gets.
    assert read_metadata(path, PNG, max_pixels=400).decodable is True


def test_garbage_after_png_magic(tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(2000)
    path = write(tmp_path / "junk.png", data)
    assert sniff(data) == PNG
    with pytest.raises(NotAnImage):
        read_metadata(path, PNG, MAX_PIXELS)
    assert not make_thumbnail(path, tmp_path / "out" / "junk.jpg", GRID, MAX_PIXELS)
    assert not (tmp_path / "out").exists()


def test_non_image_is_not_thumbnailed(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.txt", b"not an image at all\n")
    assert not make_thumbnail(path, tmp_path / "notes.jpg", GRID, MAX_PIXELS)
    no_stray_files(tmp_path, "notes.txt")


def test_missing_file_is_an_error_not_bad_data(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path / "gone.jpg", JPEG, MAX_PIXELS)
    with pytest.raises(FileNotFoundError):
        make_thumbnail(tmp_path / "gone.jpg", tmp_path / "thumb.jpg", GRID, MAX_PIXELS)


def test_gif_bomb_is_refused_before_pillow_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 49 bytes: a 32x32 screen whose first frame claims 30000x30000 with "restore to
    # background", which Pillow would allocate and fill (900 MB) inside Image.open.
    gif = b"GIF89a" + struct.pack("<HHBBB", 32, 32, 0xF1, 3, 0)
    gif += bytes.fromhex("000000ff000000ff00ffffff")
    gif += b"\x21\xf9\x04\x08\x00\x00\x00\x00"
    gif += b"\x2c" + struct.pack("<HHHHB", 0, 0, 30000, 30000, 0) + b"\x02\x02\x44\x01\x00\x3b"
    path = write(tmp_path / "bomb.gif", gif)

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow opened the bomb")

    monkeypatch.setattr(Image, "open", no_open)
    metadata = read_metadata(path, GIF, MAX_PIXELS)
    assert (metadata.width, metadata.height, metadata.decodable) == (30000, 30000, False)
    assert not make_thumbnail(path, tmp_path / "out" / "bomb.jpg", GRID, MAX_PIXELS)
