"""transcode.py: a video's playable preview, made in this process (the server makes it in
a decoding worker): its size, its rotation, its frame rate, and what gets none."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest

from server.imaging.budget import DEFAULT_BUDGET
from server.imaging.transcode import make_preview, preview_size
from tests.imaging.videos import make_video


@pytest.mark.parametrize(
    ("size", "rotation", "expected"),
    [
        ((3840, 2160), 0, (1280, 720)),
        ((1920, 1080), 90, (1280, 720)),  # encoded as stored, then turned: shown 720x1280
        ((1080, 1920), 0, (720, 1280)),
        ((640, 480), 0, (640, 480)),  # never enlarged
        ((1440, 1080), 0, (960, 720)),
        ((1001, 601), 270, (1000, 600)),  # even sides
    ],
)
def test_a_preview_fits_720p_as_it_is_shown(
    size: tuple[int, int], rotation: int, expected: tuple[int, int]
) -> None:
    assert preview_size(*size, rotation) == expected


def frames_of(path: Path) -> tuple[int, int, int, list[float]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.time) for f in container.decode(stream) if f.time is not None]
        return stream.codec_context.width, stream.codec_context.height, len(times), times


def test_sixty_frames_a_second_become_thirty(tmp_path: Path) -> None:
    source = make_video(tmp_path / "v.mov", fmt="mov", codec="libx265", frames=60, rate=60)
    told: list[float] = []
    made = make_preview(source, tmp_path / "p.mp4", DEFAULT_BUDGET, told.append)
    assert not isinstance(made, str), made
    width, height, count, times = frames_of(tmp_path / "p.mp4")
    assert (width, height, made.audio) == (64, 48, False)
    assert count == 30
    assert all(b - a == pytest.approx(1 / 30, abs=0.002) for a, b in itertools.pairwise(times))
    assert told == sorted(told) and 0 < told[-1] <= 1


def test_a_turned_video_is_made_upright(tmp_path: Path) -> None:
    source = make_video(tmp_path / "v.mp4", codec="libx265", size=(64, 48), rotation=270)
    made = make_preview(source, tmp_path / "p.mp4", DEFAULT_BUDGET)
    assert not isinstance(made, str), made
    assert (made.width, made.height) == (48, 64)
    with av.open(str(tmp_path / "p.mp4")) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == 0  # the pixels are turned, not a matrix
        image = frame.to_image().convert("RGB")
    right, left = image.getpixel((43, 32)), image.getpixel((4, 32))
    assert isinstance(right, tuple) and isinstance(left, tuple)
    assert right[0] > 150 > left[0]  # 270: the top (red) comes to the right, as its poster


def test_what_is_too_large_or_long_or_not_a_video_gets_no_preview(tmp_path: Path) -> None:
    text = tmp_path / "t.mp4"
    text.write_bytes(b"not a video" * 100)
    assert isinstance(make_preview(text, tmp_path / "p.mp4", DEFAULT_BUDGET), str)
    source = make_video(tmp_path / "v.mp4", codec="libx265")
    why = make_preview(source, tmp_path / "p.mp4", 1024)  # a budget no frame fits
    assert isinstance(why, str) and "over the budget" in why
    assert not (tmp_path / "p.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
