"""Sniffing, header metadata and the header walk's caps for videos made with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from server.imaging import bmff
from server.imaging.formats import (
    AVIF,
    HEIC,
    MATROSKA,
    MOV,
    MP4,
    THREE_GP,
    WEBM,
    sniff,
    sniff_media,
    sniff_video,
)
from server.imaging.video import NotAVideo, read_video_metadata

from . import bombs
from .videos import bomb_mp4, box, frame_image, make_video, patch_dimensions

APPLE = {
    "creation_time": "2024-05-01T10:20:30.000000Z",
    "com.apple.quicktime.creationdate": "2024-05-01T18:20:30+0800",
    "com.apple.quicktime.location.ISO6709": "+31.2304+121.4737+004.000/",
    "com.apple.quicktime.content.identifier": "5A7D3F4E-1B2C-4D5E-8F90-0A1B2C3D4E5F",
}


def _head(path: Path) -> bytes:
    return path.read_bytes()[:4096]


@pytest.mark.parametrize(
    ("fmt", "codec", "kind"),
    [
        ("mp4", "libx264", MP4),
        ("mov", "libx264", MOV),
        ("webm", "libvpx-vp9", WEBM),
        ("matroska", "libx264", MATROSKA),
    ],
)
def test_sniffs_videos_from_their_bytes(tmp_path: Path, fmt: str, codec: str, kind: object) -> None:
    path = make_video(tmp_path / f"v.{fmt}", fmt=fmt, codec=codec)
    assert sniff_video(_head(path)) == kind
    assert sniff_media(_head(path)) == kind
    assert sniff(_head(path)) is None  # the image sniff (today's ingest) is unchanged


def test_sniffs_3gp(tmp_path: Path) -> None:
    if "3gp" not in av.formats_available:
        pytest.skip("this FFmpeg has no 3GP muxer")
    path = make_video(tmp_path / "v.3gp", fmt="3gp", size=(176, 144))
    assert sniff_video(_head(path)) == THREE_GP
    assert read_video_metadata(path).codec == "h264"


def test_heic_and_avif_brands_stay_images() -> None:
    from PIL import Image

    for fmt, kind in (("HEIF", HEIC), ("AVIF", AVIF)):
        head = bombs.encode(Image.new("RGB", (16, 16)), fmt)[:4096]
        assert sniff_media(head) == kind
        assert sniff_video(head) is None
    # An ftyp listing a video brand beside heic is still a HEIC.
    head = b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmp41"
    assert sniff_media(head) == HEIC


def test_not_a_video_with_a_video_name_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"this is a text file, not a video\n" * 100)
    assert sniff_media(_head(fake)) is None
    # Audio-only brands are never videos.
    assert sniff_video(b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42isom") is None
    # A video brand but no movie inside.
    fake.write_bytes(b"\x00\x00\x00\x14ftypisom\x00\x00\x00\x00isom" + b"junk" * 50)
    with pytest.raises(NotAVideo):
        read_video_metadata(fake)


def test_an_audio_only_mp4_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        for n in range(4):
            frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate, frame.pts = 8000, n * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert sniff_video(_head(path)) == MP4  # its brands say mp4: only the header tells
    with pytest.raises(NotAVideo):
        read_video_metadata(path)


def test_h264_mp4_metadata(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", frames=20, rate=10)
    facts = read_video_metadata(path)
    assert (facts.format, facts.mime, facts.codec) == ("MP4", "video/mp4", "h264")
    assert (facts.width, facts.height) == (64, 48)
    assert facts.duration == pytest.approx(2.0, abs=0.05)
    assert facts.frame_rate == pytest.approx(10.0)
    assert facts.decodable and facts.rotation == 0 and not facts.has_gps
    assert facts.content_identifier is None


def test_mov_with_apple_metadata_and_rotation(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mov", fmt="mov", rotation=90, metadata=APPLE)
    facts = read_video_metadata(path)
    assert facts.format == "MOV"
    assert (facts.width, facts.height) == (48, 64)  # displayed: turned a quarter
    assert facts.rotation == 90
    assert facts.taken_at == "2024-05-01T18:20:30+08:00"  # Apple's local time and offset
    assert facts.has_gps
    assert facts.content_identifier == APPLE["com.apple.quicktime.content.identifier"]


def test_creation_time_alone_is_utc(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", metadata={"creation_time": "2023-12-31T23:59:58Z"})
    assert read_video_metadata(path).taken_at == "2023-12-31T23:59:58+00:00"


def test_android_location_tag(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", metadata={"location": "+37.4219-122.0840/"})
    assert read_video_metadata(path).has_gps


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_agrees_with_ffmpeg(tmp_path: Path, degrees: int) -> None:
    path = make_video(tmp_path / "v.mp4", rotation=degrees)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert read_video_metadata(path).rotation == frame.rotation % 360 == degrees


def test_hevc_mov(tmp_path: Path) -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("this FFmpeg has no libx265 encoder")
    facts = read_video_metadata(make_video(tmp_path / "v.mov", fmt="mov", codec="libx265"))
    assert (facts.format, facts.codec, facts.width, facts.height) == ("MOV", "hevc", 64, 48)


def test_webm_vp9(tmp_path: Path) -> None:
    facts = read_video_metadata(make_video(tmp_path / "v.webm", fmt="webm", codec="libvpx-vp9"))
    assert (facts.format, facts.mime, facts.codec) == ("WEBM", "video/webm", "vp9")
    assert (facts.width, facts.height) == (64, 48) and facts.decodable


def test_truncated_video_is_kept_without_poster(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "v.mp4", frames=20).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    facts = read_video_metadata(cut)
    assert not facts.decodable
    assert facts.mime == "video/mp4"


def test_truncated_before_its_movie_header(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "v.mp4", frames=20).read_bytes()
    assert whole.index(b"mdat") < whole.index(b"moov")  # as phones write them
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: whole.index(b"moov") - 16])
    facts = read_video_metadata(cut)
    assert not facts.decodable and facts.width is None


@pytest.mark.parametrize(
    ("declared", "why"),
    [
        ({"width": 60000, "height": 60000}, "60000x60000"),
        ({"duration": 10 * 365 * 24 * 3600}, "duration"),
        ({"tracks": 3000}, "tracks"),
    ],
)
def test_bombs_are_refused_from_the_header(
    tmp_path: Path, declared: dict[str, int], why: str
) -> None:
    path = tmp_path / "bomb.mp4"
    path.write_bytes(bomb_mp4(**declared))
    facts = read_video_metadata(path)
    assert not facts.decodable and why in (facts.reason or "")


def test_a_real_video_declaring_a_huge_frame(tmp_path: Path) -> None:
    real = make_video(tmp_path / "v.mp4").read_bytes()
    path = tmp_path / "bomb.mp4"
    path.write_bytes(patch_dimensions(real, 60000, 60000))
    facts = read_video_metadata(path)
    assert not facts.decodable and "60000x60000" in (facts.reason or "")


def test_box_count_is_capped(tmp_path: Path) -> None:
    free = box(b"free", b"") * (bmff.MAX_BOXES + 10)
    path = tmp_path / "boxes.mp4"
    path.write_bytes(bomb_mp4()[:32] + box(b"moov", free))
    facts = read_video_metadata(path)
    assert not facts.decodable and "boxes in the movie header" in (facts.reason or "")


def test_fragments_at_the_top_level_are_walked(tmp_path: Path) -> None:
    """A fragmented MP4's many moof/mdat pairs are not a bomb; past the cap they are."""
    real = make_video(tmp_path / "v.mp4").read_bytes()
    pairs = (box(b"moof", b"") + box(b"free", b"")) * 3000
    path = tmp_path / "fragments.mp4"
    path.write_bytes(real + pairs)
    assert read_video_metadata(path).decodable
    many = bmff.MAX_TOP_LEVEL_BOXES // 2 + 10
    path.write_bytes(real + (box(b"moof", b"") + box(b"free", b"")) * many)
    facts = read_video_metadata(path)
    assert not facts.decodable and "top-level" in (facts.reason or "")


def test_a_webm_with_too_many_streams(tmp_path: Path) -> None:
    """WebM has no walk of its own: its stream count is checked once FFmpeg opened it."""
    path = tmp_path / "streams.webm"
    with av.open(str(path), "w", format="webm") as out:
        streams = []
        for _ in range(bmff.MAX_TRACKS + 2):
            stream = out.add_stream("libvpx-vp9", rate=10)
            stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
            streams.append(stream)
        picture = av.VideoFrame.from_image(frame_image(16, 16))
        for stream in streams:
            for packet in [*stream.encode(picture), *stream.encode()]:
                out.mux(packet)
    facts = read_video_metadata(path)
    assert not facts.decodable and "streams" in (facts.reason or "")
