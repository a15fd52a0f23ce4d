"""The decode budget: judged from the header, before any pixel is decoded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from server.imaging import DEFAULT_BUDGET, Limits, read_metadata, render, sniff
from tests.imaging.bombs import BOMBS, baseline_jpeg, png

MAX_PIXELS = 250_000_000


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_are_judged_from_their_header(name: str, tmp_path: Path, no_decoding: None) -> None:
    data, ext = BOMBS[name]()
    path = write(tmp_path / f"bomb.{ext}", data)
    kind = sniff(data[:4096])
    assert kind is not None
    metadata = read_metadata(path, kind, MAX_PIXELS)
    assert metadata.width is not None and metadata.height is not None
    assert metadata.width * metadata.height <= MAX_PIXELS  # the budget refuses it, not the limit
    assert metadata.decodable is False

    outputs = {360: tmp_path / "grid.jpg", 1440: tmp_path / "preview.jpg"}
    reason = render(path, outputs, Limits(MAX_PIXELS))
    assert reason is not None and "over the budget" in reason
    assert not any(p.exists() for p in outputs.values())


def test_a_200_mp_phone_photo_is_drafted_within_the_budget(tmp_path: Path) -> None:
    # 16320 x 12240 declared: libjpeg decodes it at 1/8 (2040 x 1530), about 12 MB.
    path = write(tmp_path / "200mp.jpg", baseline_jpeg(16320, 12240))
    metadata = read_metadata(path, sniff(path.read_bytes()[:4096]) or pytest.fail(), MAX_PIXELS)
    assert (metadata.width, metadata.height, metadata.decodable) == (16320, 12240, True)
    outputs = {360: tmp_path / "grid.jpg", 1440: tmp_path / "preview.jpg"}
    assert render(path, outputs, Limits(MAX_PIXELS, 32 * 1024 * 1024)) is None
    with Image.open(outputs[1440]) as preview:
        assert preview.size == (1440, 1080)
    with Image.open(outputs[360]) as grid:
        assert grid.size == (360, 270)


def test_the_budget_is_a_setting(tmp_path: Path) -> None:
    path = write(tmp_path / "p.png", png(1000, 1000))  # 1 MP RGBA: 4 MB decoded
    kind = sniff(path.read_bytes()[:4096])
    assert kind is not None
    assert read_metadata(path, kind, MAX_PIXELS, budget=4_000_000).decodable
    assert not read_metadata(path, kind, MAX_PIXELS, budget=3_999_999).decodable
    assert render(path, {360: tmp_path / "a.jpg"}, Limits(MAX_PIXELS, 3_999_999)) is not None
    assert render(path, {360: tmp_path / "b.jpg"}, Limits(MAX_PIXELS, 4_000_000)) is None


def test_the_default_budget_fits_a_small_box_and_a_48_mp_heic() -> None:
    # Measured: decoding an 8064 x 6048 HEIC peaks at 339 MB (libheif's RGB, then Pillow's).
    pixels = 8064 * 6048
    assert pixels * (3 + 4) < DEFAULT_BUDGET
    assert DEFAULT_BUDGET == 384 * 1024 * 1024


def test_a_poster_weighs_its_frames() -> None:
    from server.imaging.budget import rough_video, video_frame

    budget = 384 * 1024 * 1024
    assert rough_video(1920, 1080, budget) == video_frame(1920, 1080, 24).bytes
    assert rough_video(1920, 1080, budget) < rough_video(3840, 2160, budget) < budget
    assert rough_video(7680, 4320, budget) == budget
    assert rough_video(None, 1080, budget) == budget


_HEADERS_ONLY = """
import pathlib, resource, sys, tempfile
from server.imaging import read_metadata, sniff
from tests.imaging.bombs import BOMBS
folder = pathlib.Path(tempfile.mkdtemp())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name, make in BOMBS.items():
    data, _ = make()
    path = folder / name
    path.write_bytes(data)
    kind = sniff(data[:4096])
    assert kind is not None, name
    assert not read_metadata(path, kind, 250_000_000).decodable, name
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_reading_the_bombs_headers_takes_no_memory_on_the_request_path() -> None:
    # In a process of its own, so that the peak is this reading's alone. Pillow fills a
    # GIF's first frame inside Image.open: a 15000 x 15000 GIF once took 216 MiB here.
    ran = subprocess.run(
        [sys.executable, "-c", _HEADERS_ONLY],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout.strip()) < 32  # MiB
