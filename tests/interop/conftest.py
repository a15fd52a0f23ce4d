"""What the interop tests share: a photo big enough to need several chunks."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image


def noise_jpeg(size: tuple[int, int] = (1400, 1000)) -> bytes:
    """A real JPEG of random pixels: incompressible, a few megabytes, unique."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, subsampling=0)
    return out.getvalue()


@dataclass(frozen=True)
class Photo:
    path: Path
    data: bytes


@pytest.fixture
def big_jpeg(tmp_path: Path) -> Photo:
    data = noise_jpeg()
    assert len(data) > 2 * 1024 * 1024
    path = tmp_path / "big photo.jpg"
    path.write_bytes(data)
    return Photo(path, data)
