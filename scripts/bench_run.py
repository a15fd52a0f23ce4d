"""What every measure is given: the run's scale, where it works, its inputs, its notes.

`Bench` is the `bench_table.Run` that `scripts/bench` hands each measure; `FULL` and
`QUICK` are the two scales (`--quick`). The inputs (a 12-MP camera photo, a 3-MP one,
random bytes) are made once a run, in its work folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench_http import FileRange, Part
from bench_profile import Profile
from bench_servers import ServerProcess
from PIL import Image, ImageChops

MiB = 1024 * 1024
MB = 1_000_000


# the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    reps: int
    upload_mib: int
    photos: int
    events_photos: int
    events_pairs: int
    thumbnail_reps: int
    list_sizes: tuple[int, int]
    list_requests: int
    memory_mib: int
    load_seconds: float
    load_raw_seconds: float


FULL = Scale(
    reps=3,
    upload_mib=512,
    photos=48,
    events_photos=60,
    events_pairs=5,
    thumbnail_reps=5,
    list_sizes=(1_000, 1_000_000),
    list_requests=60,
    memory_mib=1024,
    load_seconds=60,
    load_raw_seconds=15,
)
QUICK = Scale(
    reps=2,
    upload_mib=128,
    photos=24,
    events_photos=40,
    events_pairs=3,
    thumbnail_reps=3,
    list_sizes=(1_000, 1_000_000),
    list_requests=30,
    memory_mib=256,
    load_seconds=15,
    load_raw_seconds=5,
)


@dataclass
class Bench:
    workdir: Path
    scale: Scale
    profile: bool
    notes: list[str] = field(default_factory=list)
    _files: dict[str, Path] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def profiling(self, server: ServerProcess, name: str) -> Iterator[None]:
        if not self.profile:
            yield
            return
        profiles = self.workdir / "profiles"
        profiles.mkdir(exist_ok=True)
        spy = Profile(server.pid, profiles / f"{name}.txt")
        spy.start()
        try:
            yield
        finally:
            self.notes += spy.stop()

    # inputs, made once a run

    def camera_jpeg(self) -> Path:
        """A 12-MP phone photo: 4032 x 3024, EXIF orientation 6, about 4 MB at quality 90."""
        return self._made("camera-12mp.jpg", lambda path: save_photo(path, (4032, 3024), 6))

    def load_jpeg(self) -> Path:
        """A 3-MP photo (2048 x 1536, about 1 MB), as phones share them."""
        return self._made("load-3mp.jpg", lambda path: save_photo(path, (2048, 1536), 1))

    def random_file(self, mib: int) -> Path:
        def write(path: Path) -> None:
            with path.open("wb") as out:
                for _ in range(mib):
                    out.write(os.urandom(MiB))

        return self._made(f"random-{mib}MiB.bin", write)

    def _made(self, name: str, make: Callable[[Path], None]) -> Path:
        if name not in self._files:
            path = self.workdir / "inputs" / name
            path.parent.mkdir(exist_ok=True)
            make(path)
            self._files[name] = path
        return self._files[name]


def save_photo(path: Path, size: tuple[int, int], orientation: int) -> None:
    """A photo-like JPEG: smooth colour fields, some texture, sensor grain, camera EXIF."""
    rng = random.Random(size[0])
    w, h = size
    scene = Image.frombytes("RGB", (16, 12), rng.randbytes(16 * 12 * 3))
    scene = scene.resize(size, Image.Resampling.BICUBIC)
    texture = Image.frombytes("RGB", (w // 8, h // 8), rng.randbytes((w // 8) * (h // 8) * 3))
    image = Image.blend(scene, texture.resize(size, Image.Resampling.BICUBIC), 0.25)
    grain = Image.effect_noise(size, 6).convert("RGB")
    image = ImageChops.add(image, grain, scale=1.0, offset=-128)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Bench"
    exif[0x0110] = "Camera 12"
    exif.get_ifd(0x8769)[0x9003] = "2026:10:01 09:30:12"
    image.save(path, "JPEG", quality=90, exif=exif)


def tiny_jpeg(tag: str) -> bytes:
    """A small real JPEG, unique by its comment, to head a large upload."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "JPEG", comment=tag.encode())
    return out.getvalue()


def big_photo(bench: Bench, mib: int, tag: str) -> list[Part]:
    """A large upload: a real JPEG, then `mib` MiB of random bytes after its end."""
    return [tiny_jpeg(tag), FileRange(bench.random_file(mib), 0, mib * MiB)]
