"""render: every size from one decode, and nothing decoded outlives its job."""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from server.imaging import Limits, render
from server.imaging import derived as render_module

MAX_PIXELS = 250_000_000


def photo_jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[weakref.ref[Any]]]:
    """Weak references to every image render opens."""
    refs: list[weakref.ref[Any]] = []
    real = render_module.open_image

    def tracking(*args: Any) -> Any:
        img = real(*args)
        refs.append(weakref.ref(img))
        return img

    monkeypatch.setattr(render_module, "open_image", tracking)
    yield refs


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "truncated"])
def test_decoded_images_do_not_outlive_their_job(
    cut: bool, tmp_path: Path, opened: list[weakref.ref[Any]]
) -> None:
    data = photo_jpeg((1600, 1200), orientation=6)
    source = tmp_path / "photo.jpg"
    source.write_bytes(data[: len(data) // 2] if cut else data)
    gc.collect()
    gc.disable()  # only reference counting: a cycle would keep the pixels alive
    try:
        assert (
            render(source, {360: tmp_path / "g.jpg", 1440: tmp_path / "p.jpg"}, Limits(MAX_PIXELS))
            is None
        )
        assert len(opened) == 1
        assert all(ref() is None for ref in opened), "a decoded image outlived its job"
    finally:
        gc.enable()


def test_one_decode_for_every_size(
    tmp_path: Path, opened: list[weakref.ref[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = 0
    real_load = render_module._load

    def counting(img: Image.Image) -> None:
        nonlocal loads
        loads += 1
        real_load(img)

    monkeypatch.setattr(render_module, "_load", counting)
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo_jpeg((4000, 3000), orientation=6))
    outputs = {360: tmp_path / "g.jpg", 1440: tmp_path / "p.jpg"}
    assert render(source, outputs, Limits(MAX_PIXELS)) is None
    assert (len(opened), loads) == (1, 1)
    with Image.open(outputs[1440]) as preview, Image.open(outputs[360]) as grid:
        assert preview.size == (1080, 1440)  # upright
        assert grid.size == (270, 360)


def test_a_refused_render_leaves_no_file(tmp_path: Path) -> None:
    source = tmp_path / "notes.jpg"
    source.write_bytes(b"\xff\xd8\xff" + bytes(100))
    outputs = {360: tmp_path / "g.jpg", 1440: tmp_path / "p.jpg"}
    assert render(source, outputs, Limits(MAX_PIXELS)) is not None
    assert list(tmp_path.iterdir()) == [source]
