"""`scripts/bench --only thumbnail`: `server.imaging.make_thumbnail` against naive Pillow.

In this process, on the 12-MP camera photo, for every thumbnail size.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench_run import Bench
from bench_table import Row, at_most, expect, median, rotated
from PIL import Image, ImageOps

from server import imaging
from server.config import Settings

# thumbnails ----------------------------------------------------------------------------


def naive_thumbnail(source: Path, dest: Path, size: int) -> None:
    """What Pillow does when asked plainly: decode it all, turn it upright, shrink, save."""
    with Image.open(source) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((size, size), Image.Resampling.LANCZOS)
        upright.convert("RGB").save(dest, "JPEG", quality=85)


def case_thumbnail(bench: Bench) -> list[Row]:
    """server.imaging.make_thumbnail against naive Pillow, in this process, on a 12-MP JPEG."""
    source = bench.camera_jpeg()
    out = bench.workdir / "thumbs"
    out.mkdir(exist_ok=True)
    max_pixels = Settings().max_pixels
    rows = []
    for name, size in sorted(imaging.THUMBNAIL_SIZES.items(), key=lambda item: item[1]):
        times: dict[str, list[float]] = {"naive": [], "tubei": []}
        for rep in range(bench.scale.thumbnail_reps + 1):
            for kind in rotated(list(times), rep):
                dest = out / f"{kind}-{size}.jpg"
                started = time.perf_counter()
                if kind == "tubei":
                    expect(imaging.make_thumbnail(source, dest, size, max_pixels), "no thumbnail")
                else:
                    naive_thumbnail(source, dest, size)
                if rep:  # the first round warms up
                    times[kind].append((time.perf_counter() - started) * 1000)
        rows.append(
            Row(
                f"thumbnail, {name} ({size} px)",
                median(times["tubei"]),
                "ms",
                median(times["naive"]),
                "naive Pillow",
                at_most(0.35),
                "12 MP JPEG, EXIF-rotated",
            )
        )
    return rows
