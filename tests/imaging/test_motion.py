"""Motion photos: the appended MP4 located from the XMP, and Live Photo identifiers."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import av
import pillow_heif
import pytest
from PIL import Image

from server.imaging.motion import (
    apple_content_identifier,
    find_motion_video,
    live_photo_identifier,
    video_range,
)

from .videos import frame_image, jpeg_bytes, make_video

pillow_heif.register_heif_opener()

MICRO_VIDEO = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
    b'GCamera:MicroVideo="1" GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="%d"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
DIRECTORY = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
    b'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
    b'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" GCamera:MotionPhoto="1">'
    b"<Container:Directory><rdf:Seq>"
    b'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" '
    b'Item:Semantic="Primary" Item:Length="0" Item:Padding="0"/></rdf:li>'
    b'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="video/mp4" '
    b'Item:Semantic="MotionPhoto" Item:Length="%d" Item:Padding="0"/></rdf:li>'
    b"</rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _motion_photo(tmp: Path, template: bytes) -> tuple[Path, bytes, bytes]:
    video = make_video(tmp / "part.mp4", frames=6).read_bytes()
    still = jpeg_bytes(xmp=template % len(video))
    path = tmp / "motion.jpg"
    path.write_bytes(still + video)
    return path, still, video


@pytest.mark.parametrize(
    "template", [MICRO_VIDEO, DIRECTORY], ids=["MicroVideoOffset", "Container"]
)
def test_the_video_part_is_located_and_plays(tmp_path: Path, template: bytes) -> None:
    path, still, video = _motion_photo(tmp_path, template)
    found = find_motion_video(path)
    assert found is not None
    assert (found.offset, found.length) == (len(still), len(video))
    assert found.kind.mime == "video/mp4"
    part = tmp_path / "served.mp4"
    data = path.read_bytes()
    part.write_bytes(data[found.offset : found.offset + found.length])
    assert part.read_bytes() == video
    with av.open(str(part)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 6 and frames[0].width == 64
    # The still is still a photo as sent: Pillow opens the same bytes.
    with Image.open(path) as img:
        assert img.format == "JPEG" and img.size == (64, 48)


def test_a_heic_motion_photo(tmp_path: Path) -> None:
    video = make_video(tmp_path / "part.mp4").read_bytes()
    out = io.BytesIO()
    frame_image(64, 48).save(out, "HEIF", xmp=MICRO_VIDEO % len(video))
    path = tmp_path / "motion.heic"
    path.write_bytes(out.getvalue() + video)
    found = find_motion_video(path)
    assert found is not None and (found.offset, found.length) == (len(out.getvalue()), len(video))


def test_an_offset_pointing_at_no_video_is_ignored(tmp_path: Path) -> None:
    still = jpeg_bytes(xmp=MICRO_VIDEO % 100)
    path = tmp_path / "lying.jpg"
    path.write_bytes(still + bytes(100))
    assert find_motion_video(path) is None
    path.write_bytes(jpeg_bytes(xmp=MICRO_VIDEO % 10**9))
    assert find_motion_video(path) is None


def test_plain_photos_and_videos_are_not_motion_photos(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    path.write_bytes(jpeg_bytes())
    assert find_motion_video(path) is None
    assert find_motion_video(make_video(tmp_path / "v.mp4")) is None


def test_directory_lengths_must_fit_the_file() -> None:
    assert video_range(DIRECTORY % 500, 1000) == (500, 500)
    assert video_range(DIRECTORY % 5000, 1000) is None
    assert video_range(MICRO_VIDEO % 0, 1000) is None


def _apple_note(identifier: bytes) -> bytes:
    """Apple's maker note: a header, then a big-endian IFD with tag 17 (ASCII)."""
    header = b"Apple iOS\x00\x00\x01MM"
    entries = 2
    data_at = len(header) + 2 + 12 * entries + 4
    ifd = struct.pack(">H", entries)
    ifd += struct.pack(">HHI4s", 1, 9, 1, b"\x00\x00\x00\x0e")  # a version, inline
    ifd += struct.pack(">HHII", 17, 2, len(identifier) + 1, data_at)
    return header + ifd + bytes(4) + identifier + b"\x00"


def test_live_photo_identifier_from_the_maker_note(tmp_path: Path) -> None:
    identifier = b"5A7D3F4E-1B2C-4D5E-8F90-0A1B2C3D4E5F"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x927C] = _apple_note(identifier)
    out = io.BytesIO()
    frame_image(64, 48).save(out, "JPEG", exif=exif)
    with Image.open(io.BytesIO(out.getvalue())) as img:
        assert live_photo_identifier(img) == identifier.decode()
    with Image.open(io.BytesIO(jpeg_bytes())) as img:
        assert live_photo_identifier(img) is None


def test_maker_notes_that_are_not_apples_or_are_cut() -> None:
    note = _apple_note(b"ABC-DEF-0123456789")
    assert apple_content_identifier(note) == "ABC-DEF-0123456789"
    assert apple_content_identifier(note[:30]) is None
    assert apple_content_identifier(b"Nikon\x00" + note[6:]) is None
