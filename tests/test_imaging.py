import io
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat
from PIL.JpegImagePlugin import JpegImageFile

from server.imaging import (
    SNIFF_BYTES,
    THUMBNAIL_SIZES,
    Kind,
    Metadata,
    NotAnImage,
    make_thumbnail,
    read_metadata,
    sniff,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
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


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: encode(_small(), "JPEG"), JPEG),
        (lambda: encode(_small(), "PNG"), PNG),
        (lambda: encode(_small(), "GIF"), GIF),
        (lambda: encode(_small(), "WEBP"), Kind("WEBP", "image/webp")),
        (lambda: encode(_small(), "WEBP", lossless=True), Kind("WEBP", "image/webp")),
        (lambda: encode(_small().convert("RGBA"), "WEBP"), Kind("WEBP", "image/webp")),
        (lambda: encode(_small(), "TIFF"), Kind("TIFF", "image/tiff")),
        (lambda: encode(_small(), "TIFF", big_tiff=True), Kind("TIFF", "image/tiff")),
        (lambda: encode(_small(), "BMP"), Kind("BMP", "image/bmp")),
        (lambda: encode(_small(), "AVIF"), Kind("AVIF", "image/avif")),
        (lambda: encode(_small(), "HEIF"), Kind("HEIF", "image/heic")),
    ],
    ids=[
        "jpeg",
        "png",
        "gif",
        "webp",
        "webp-lossless",
        "webp-alpha",
        "tiff",
        "bigtiff",
        "bmp",
        "avif",
        "heic",
    ],
)
def test_sniff_generated_images(make: Callable[[], bytes], expected: Kind) -> None:
    data = make()
    assert sniff(data[:SNIFF_BYTES]) == expected
    assert sniff(data[:32]) == expected


def ftyp(major: bytes, *compatible: bytes, size: int | None = None) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", size if size is not None else 8 + len(body)) + b"ftyp" + body


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (ftyp(b"heic", b"mif1", b"heic"), Kind("HEIF", "image/heic")),
        (ftyp(b"mif1", b"mif1", b"heic"), Kind("HEIF", "image/heic")),
        (ftyp(b"heix", b"mif1"), Kind("HEIF", "image/heic")),
        (ftyp(b"hevc", b"msf1"), Kind("HEIF", "image/heic")),
        (ftyp(b"mif1", b"mif1", b"miaf"), Kind("HEIF", "image/heif")),
        (ftyp(b"msf1", b"iso8"), Kind("HEIF", "image/heif")),
        (ftyp(b"avif", b"mif1", b"miaf"), Kind("AVIF", "image/avif")),
        (ftyp(b"avis", b"msf1"), Kind("AVIF", "image/avif")),
        (ftyp(b"mif1", b"avif", b"miaf"), Kind("AVIF", "image/avif")),
        (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), None),
        (ftyp(b"qt  ", b"qt  "), None),
        (ftyp(b"crx ", b"crx "), None),
        # A compatible brand past the box's declared end belongs to the next box.
        (ftyp(b"isom", b"isom", size=20) + b"heic", None),
        (b"\x00\x00\x00\x18ftyp", None),
    ],
    ids=lambda value: value.hex()[:48] if isinstance(value, bytes) else str(value),
)
def test_sniff_iso_bmff_brands(head: bytes, expected: Kind | None) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff\xd8",
        b"hello, this is plain text\n" * 10,
        b"BMW 320i, one careful owner\n",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(100),
        b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100),
        b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
        random.Random(1234).randbytes(SNIFF_BYTES),
        ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41") + b"\x00\x00\x00\x08free",
    ],
    ids=["empty", "half-jpeg", "text", "bm-text", "pdf", "zip", "wav", "svg", "random", "mp4"],
)
def test_sniff_rejects_non_images(head: bytes) -> None:
    assert sniff(head) is None


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
