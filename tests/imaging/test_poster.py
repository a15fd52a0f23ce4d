"""Posters: a frame about a second in, upright, at every size, under the budget."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from PIL import Image

from server.imaging.budget import video_frame
from server.imaging.derived import Limits
from server.imaging.poster import render_poster

from .videos import BLUE, RED, bomb_mp4, make_video, patch_dimensions

MAX_PIXELS = 250_000_000
SIZES = {360: "grid.jpg", 1440: "preview.jpg"}


def _outputs(tmp: Path) -> dict[int, Path]:
    return {size: tmp / name for size, name in SIZES.items()}


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=False))


def _halves(path: Path) -> tuple[tuple[int, ...], ...]:
    """The colours at the middle of the top, bottom, left and right edges."""
    with Image.open(path) as img:
        assert img.format == "JPEG" and img.mode == "RGB"
        assert not img.info.get("exif") and "icc_profile" not in img.info
        w, h = img.size
        points = ((w // 2, 2), (w // 2, h - 3), (2, h // 2), (w - 3, h // 2))
        return tuple(img.getpixel(p) for p in points)  # type: ignore[misc]


def test_poster_at_every_size_upright(tmp_path: Path) -> None:
    source = make_video(tmp_path / "v.mp4", size=(64, 48))
    outputs = _outputs(tmp_path)
    assert render_poster(source, outputs, Limits(MAX_PIXELS)) is None
    for path in outputs.values():
        top, bottom, _, _ = _halves(path)
        assert _near(top, RED) and _near(bottom, BLUE)
        with Image.open(path) as img:
            assert img.size == (64, 48)  # never enlarged


def test_poster_shrinks_to_the_grid(tmp_path: Path) -> None:
    source = make_video(tmp_path / "v.mp4", size=(800, 400), frames=2)
    outputs = _outputs(tmp_path)
    assert render_poster(source, outputs, Limits(MAX_PIXELS)) is None
    with Image.open(outputs[360]) as grid, Image.open(outputs[1440]) as preview:
        assert grid.size == (360, 180) and preview.size == (800, 400)


@pytest.mark.parametrize(
    ("degrees", "left", "right", "top", "bottom"),
    [
        # Counter-clockwise, as FFmpeg's display matrix: a quarter turn brings the top
        # (red) to the left.
        (90, RED, BLUE, None, None),
        (270, BLUE, RED, None, None),
        (180, None, None, BLUE, RED),
    ],
)
def test_poster_is_turned_by_the_display_matrix(
    tmp_path: Path,
    degrees: int,
    left: tuple[int, int, int] | None,
    right: tuple[int, int, int] | None,
    top: tuple[int, int, int] | None,
    bottom: tuple[int, int, int] | None,
) -> None:
    source = make_video(tmp_path / "v.mov", fmt="mov", rotation=degrees)
    outputs = _outputs(tmp_path)
    assert render_poster(source, outputs, Limits(MAX_PIXELS)) is None
    at_top, at_bottom, at_left, at_right = _halves(outputs[360])
    with Image.open(outputs[360]) as img:
        assert img.size == ((48, 64) if degrees in (90, 270) else (64, 48))
    if left is not None and right is not None:
        assert _near(at_left, left) and _near(at_right, right)
    if top is not None and bottom is not None:
        assert _near(at_top, top) and _near(at_bottom, bottom)


def test_poster_is_about_a_second_in(tmp_path: Path) -> None:
    """A 2-s clip at 4 fps whose frames are told apart by their brightness."""
    path = tmp_path / "v.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=4, options={"g": "2", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for n in range(8):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 48), (n * 30,) * 3))
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    outputs = {360: tmp_path / "g.jpg"}
    assert render_poster(path, outputs, Limits(MAX_PIXELS)) is None
    with Image.open(outputs[360]) as img:
        grey = img.convert("L").getpixel((32, 24))
    assert isinstance(grey, int) and abs(grey - 4 * 30) < 20  # frame 4: at 1.0 s


def test_short_videos_show_their_first_frame(tmp_path: Path) -> None:
    source = make_video(tmp_path / "v.webm", fmt="webm", codec="libvpx-vp9", frames=3)
    outputs = {360: tmp_path / "g.jpg"}
    assert render_poster(source, outputs, Limits(MAX_PIXELS)) is None
    top, bottom, _, _ = _halves(outputs[360])
    assert _near(top, RED) and _near(bottom, BLUE)


def test_hevc_poster(tmp_path: Path) -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("this FFmpeg has no libx265 encoder")
    source = make_video(tmp_path / "v.mov", fmt="mov", codec="libx265", rotation=90)
    outputs = {360: tmp_path / "g.jpg"}
    assert render_poster(source, outputs, Limits(MAX_PIXELS)) is None
    _, _, left, right = _halves(outputs[360])
    assert _near(left, RED) and _near(right, BLUE)


def test_over_the_budget_is_refused_before_decoding(tmp_path: Path) -> None:
    source = make_video(tmp_path / "v.mp4", size=(640, 480), frames=1)
    needed = video_frame(640, 480, 12).bytes
    outputs = {360: tmp_path / "g.jpg"}
    reason = render_poster(source, outputs, Limits(MAX_PIXELS, budget=needed - 1))
    assert reason is not None and "over the budget" in reason
    assert not outputs[360].exists()
    assert render_poster(source, outputs, Limits(MAX_PIXELS, budget=needed)) is None


def test_the_estimate_grows_with_the_pixel_format() -> None:
    eight = video_frame(3840, 2160, 12).bytes
    ten = video_frame(3840, 2160, 24).bytes
    assert 150 * 2**20 < eight < ten < 384 * 2**20  # a 4K poster fits the default budget
    assert video_frame(7680, 4320, 12).bytes > 384 * 2**20  # 8K needs a larger one


def test_truncated_and_bombs_get_no_poster(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "v.mp4", frames=20).read_bytes()
    cases = {
        "cut": whole[: len(whole) * 2 // 3],
        "huge": patch_dimensions(whole, 60000, 60000),
        "years": bomb_mp4(duration=10**9),
        "tracks": bomb_mp4(tracks=5000),
        "text": b"not a video at all" * 10,
    }
    for name, data in cases.items():
        source = tmp_path / f"{name}.mp4"
        source.write_bytes(data)
        outputs = {360: tmp_path / f"{name}.jpg"}
        assert render_poster(source, outputs, Limits(MAX_PIXELS)) is not None, name
        assert not outputs[360].exists(), name
