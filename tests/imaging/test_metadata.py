"""What read_metadata finds in generated files: EXIF, the moment taken, the size."""

import struct
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from server.imaging import Metadata, read_metadata, sniff
from tests.imaging.pictures import (
    BLUE,
    GIF,
    JPEG,
    MAX_PIXELS,
    PNG,
    RED,
    _small,
    build_exif,
    encode,
    jpeg_with_exif,
    split_image,
    write,
)

# --- metadata and thumbnails of generated files ----------------------------------------


def test_exif_jpeg_metadata(tmp_path: Path) -> None:
    exif = build_exif(
        orientation=6,
        make="Canon\x00",
        model="  Canon EOS R5 \x00",
        original="2023:07:14 18:30:05",
        offset_original="+08:00",
        datetime="2024:01:01 00:00:00",
        gps=True,
    )
    path = jpeg_with_exif(tmp_path / "photo.jpg", exif)

    assert read_metadata(path, JPEG, MAX_PIXELS) == Metadata(
        format="JPEG",
        mime="image/jpeg",
        width=200,
        height=400,
        orientation=6,
        taken_at="2023-07-14T18:30:05+08:00",
        camera_make="Canon",
        camera_model="Canon EOS R5",
        has_gps=True,
        decodable=True,
        exif=True,
    )


def test_exif_presence_is_recorded(tmp_path: Path) -> None:
    with_exif = jpeg_with_exif(tmp_path / "camera.jpg", build_exif(orientation=1))
    assert read_metadata(with_exif, JPEG, MAX_PIXELS).exif is True
    # What a phone hands over after re-encoding: the same picture, no EXIF at all.
    bare = write(tmp_path / "bare.jpg", encode(split_image((400, 200), RED, BLUE), "JPEG"))
    assert read_metadata(bare, JPEG, MAX_PIXELS).exif is False
    png = write(tmp_path / "screen.png", encode(_small(), "PNG"))
    assert read_metadata(png, PNG, MAX_PIXELS).exif is False
    # Headers too many to walk: the photo is kept, and whether it had EXIF is not known.
    whole = encode(_small(), "JPEG")
    comments = b"\xff\xfe\x00\x03x" * 1001
    crowded = write(tmp_path / "crowded.jpg", whole[:2] + comments + whole[2:])
    assert read_metadata(crowded, JPEG, MAX_PIXELS).exif is None


@pytest.mark.parametrize(
    ("exif", "taken_at"),
    [
        (build_exif(original="2021:02:03 04:05:06"), "2021-02-03T04:05:06"),
        (
            build_exif(original="2021:02:03 04:05:06", offset_original="-05:30"),
            "2021-02-03T04:05:06-05:30",
        ),
        (build_exif(original="2021:02:03 04:05:06\x00  "), "2021-02-03T04:05:06"),
        (build_exif(original="2021:02:03 04:05:06", offset_original="+8"), "2021-02-03T04:05:06"),
        (
            build_exif(original="2021:02:03 04:05:06", offset_original="+25:00"),
            "2021-02-03T04:05:06",
        ),
        (build_exif(original="0000:00:00 00:00:00"), None),
        (build_exif(original="    :  :     :  :  "), None),
        (build_exif(original="2021:02:30 04:05:06"), None),
        (build_exif(original="yesterday"), None),
        (
            build_exif(digitized="2020:01:01 10:00:00", datetime="2019:01:01 10:00:00"),
            "2020-01-01T10:00:00",
        ),
        (build_exif(datetime="2019:12:31 23:59:59"), "2019-12-31T23:59:59"),
        (
            build_exif(original="0000:00:00 00:00:00", datetime="2019:12:31 23:59:59"),
            "2019-12-31T23:59:59",
        ),
        (
            build_exif(
                digitized="2020:01:01 10:00:00",
                offset_digitized="+01:00",
                offset_original="+09:00",
            ),
            "2020-01-01T10:00:00+01:00",
        ),
        (build_exif(), None),
    ],
)
def test_taken_at(tmp_path: Path, exif: Image.Exif, taken_at: str | None) -> None:
    path = jpeg_with_exif(tmp_path / "photo.jpg", exif)
    assert read_metadata(path, JPEG, MAX_PIXELS).taken_at == taken_at


def test_blank_camera_fields_are_none(tmp_path: Path) -> None:
    path = jpeg_with_exif(tmp_path / "photo.jpg", build_exif(make="\x00\x00", model="   "))
    metadata = read_metadata(path, JPEG, MAX_PIXELS)
    assert metadata.camera_make is None
    assert metadata.camera_model is None
    assert metadata.has_gps is False
    assert metadata.orientation is None


def test_read_metadata_never_decodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = {
        "a.jpg": encode(_small(), "JPEG", exif=build_exif(orientation=3)),
        "a.png": encode(_small(), "PNG"),
        "a.gif": encode(_small(), "GIF"),
        "a.tiff": encode(_small(), "TIFF"),
    }

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for name, data in sources.items():
        path = write(tmp_path / name, data)
        kind = sniff(data)
        assert kind is not None
        metadata = read_metadata(path, kind, MAX_PIXELS)
        assert (metadata.width, metadata.height, metadata.decodable) == (64, 48, True), name


def test_gif_measure_matches_pillow(tmp_path: Path) -> None:
    frames = [Image.new("P", (60, 40), i) for i in range(3)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0)
    commented = encode(_small(), "GIF", comment=b"x" * 600, transparency=0)
    grown = bytearray(encode(Image.new("L", (30, 20), 9), "GIF"))
    descriptor = grown.index(b"\x2c\x00\x00\x00\x00")
    grown[descriptor + 1 : descriptor + 5] = struct.pack("<HH", 50, 70)
    for name, data in (("animated", animated), ("commented", commented), ("grown", grown)):
        path = write(tmp_path / f"{name}.gif", bytes(data))
        with Image.open(path) as img:
            expected = img.size
        metadata = read_metadata(path, GIF, MAX_PIXELS)
        assert (metadata.width, metadata.height) == expected, name
        assert metadata.decodable
        assert read_metadata(path, GIF, expected[0] * expected[1] - 1).decodable is False
    assert (metadata.width, metadata.height) == (80, 90)
