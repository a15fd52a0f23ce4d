"""`scripts/bench --only video`: a video's metadata, its poster, and a worker's memory.

A 200 MB H.264 MP4 (64 MB with --quick) is made by muxing one second of 1080p (a
keyframe and 29 P-frames, about 20 Mbit/s) over and over, movie header last as phones
write it. Its metadata is read in a decoding
worker (`DecodePool.probe`, as the server will: an info row, it waits for idle CPU and
includes the round trip) and, in this process, measured against reading the same
bytes' SHA-256, which every upload pays anyway: the metadata must cost a small fraction
of that, which it can only if it does not read the file through (the bytes it read are
counted too, from /proc/self/io). Then the poster of that file, and the
decoding worker's peak RSS (VmHWM) while it makes the poster of a 4K frame, and a
fresh worker's while it makes the playable preview (H.264, 720p) of one second of 4K
HEVC, with the CPU that transcode took.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from fractions import Fraction
from pathlib import Path

import av
import bench_video_ingest
from bench_table import Row, Run, Target, at_most, expect, median
from PIL import Image

from server.imaging import DecodePool, PoolLimits
from server.imaging.budget import DEFAULT_BUDGET
from server.imaging.pool import cpu_seconds
from server.imaging.video import read_video_metadata

MiB = 1024 * 1024
MAX_PIXELS = 250_000_000
_REPS = 5
_FRAME = Fraction(1, 30)


def _noise_video(
    dest: Path, size: tuple[int, int], frames: int, total_bytes: int, codec: str = "libx264"
) -> Path:
    """Smooth blobs (noise at 1/8 scale, enlarged) at a phone's bit rate, one group of
    `frames` encoded once (a keyframe, then P-frames), remuxed until `total_bytes`."""
    with av.open(str(dest), "w", format="mp4") as out:
        options = {"preset": "ultrafast", "crf": "18", "g": str(frames), "bf": "0"}
        if codec == "libx265":
            options["x265-params"] = "log-level=none"
        stream = out.add_stream(codec, rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        packets = []
        small = (size[0] // 8, size[1] // 8)
        for n in range(frames):
            noise = (
                Image.effect_noise(small, 64).convert("RGB").resize(size, Image.Resampling.BICUBIC)
            )
            frame = av.VideoFrame.from_image(noise)
            frame.pts = n
            packets += stream.encode(frame)
        packets += stream.encode()
        written, pts = 0, 0
        while pts == 0 or written < total_bytes:
            for packet in packets:
                # Muxing rescales a packet to the stream's time base: set it anew each time.
                packet.time_base = _FRAME
                packet.pts = packet.dts = pts
                packet.stream = stream
                pts += 1
                written += packet.size
                out.mux(packet)
    return dest


def _read_bytes() -> int:
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def _sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def case_video(bench: Run) -> list[Row]:
    quick = bench.scale.upload_mib < 512
    total = (64 if quick else 200) * MiB
    folder = bench.workdir / "video"
    folder.mkdir(exist_ok=True)
    big = _noise_video(folder / "big.mp4", (1920, 1080), 30, total)
    size = big.stat().st_size
    bench.say(f"video: {size / MiB:.0f} MiB MP4 made")
    before = _read_bytes()
    facts = read_video_metadata(big)
    read = _read_bytes() - before
    expect(facts.decodable and facts.width == 1920, f"the bench video did not read: {facts}")
    inline, hashes = [], []
    for _ in range(_REPS):
        started = time.perf_counter()
        read_video_metadata(big)
        inline.append(time.perf_counter() - started)
        started = time.perf_counter()
        _sha256(big)
        hashes.append(time.perf_counter() - started)
    four_k = _noise_video(folder / "4k.mp4", (3840, 2160), 2, 0)
    four_k_hevc = _noise_video(folder / "4k-hevc.mp4", (3840, 2160), 30, 0, "libx265")
    mb = size / MiB
    bench.notes.append(
        f"video: the metadata read of the {mb:.0f} MiB MP4 read {read / 1024:.0f} KiB of it"
    )
    metadata = Row(
        f"video: metadata of a {mb:.0f} MiB MP4",
        median(inline) * 1000,
        "ms",
        median(hashes) * 1000,
        "SHA-256 of its bytes",
        at_most(0.05),
        f"median of {_REPS}; {read / 1024:.0f} KiB read",
    )
    rows = asyncio.run(_measure(bench, big, four_k, size))
    previews = asyncio.run(_preview(four_k_hevc))
    return [metadata, *bench_video_ingest.ingest_rows(bench, big), *rows, *previews]


async def _measure(bench: Run, big: Path, four_k: Path, size: int) -> list[Row]:
    pool = DecodePool(PoolLimits(1, DEFAULT_BUDGET, 60.0))
    try:
        probes, posters = [], []
        for n in range(_REPS):
            started = time.perf_counter()
            expect(await pool.probe(big) is not None, "probe found no video")
            probes.append(time.perf_counter() - started)
            out = big.with_name(f"poster-{n}.jpg")
            started = time.perf_counter()
            expect(await pool.poster(big, {360: out}, MAX_PIXELS, urgent=True) is None, "no poster")
            posters.append(time.perf_counter() - started)
        # A fresh worker, so its peak is this poster's.
        await pool.close()
        pool = DecodePool(PoolLimits(1, DEFAULT_BUDGET, 60.0))
        outputs = {360: four_k.with_name("g.jpg"), 1440: four_k.with_name("p.jpg")}
        expect(await pool.poster(four_k, outputs, MAX_PIXELS, urgent=True) is None, "no 4K poster")
        peak = _peak_rss(pool.pids[0])
    finally:
        await pool.close()
    return [
        Row(
            f"video: the same, asked of a decoding worker ({size / MiB:.0f} MiB)",
            median(probes) * 1000,
            "ms",
            detail=f"median of {_REPS}; on idle CPU, with its round trip",
        ),
        Row(
            "video: poster of the same (1080p, grid)",
            median(posters),
            "s",
            target=Target("value", "<", 2.0, "< 2 s"),
            detail=f"median of {_REPS}",
        ),
        Row(
            "video: worker peak RSS, a 4K poster at both sizes",
            peak / MiB,
            "MiB",
            target=Target("value", "<", 300, "< 300 MiB"),
            detail="VmHWM",
        ),
    ]


async def _preview(source: Path) -> list[Row]:
    """A fresh worker, so its peak is this transcode's."""
    pool = DecodePool(PoolLimits(1, DEFAULT_BUDGET, 60.0))
    try:
        output = source.with_name("preview.mp4")
        started = time.perf_counter()
        answer = await pool.preview(source, output, cpu_limit=600.0)
        took = time.perf_counter() - started
        expect(answer.get("made") is True, f"no 4K preview: {answer}")
        pid = pool.pids[0]
        peak, cpu = _peak_rss(pid), cpu_seconds(pid)
    finally:
        await pool.close()
    return [
        Row(
            "video: worker peak RSS, the 720p preview of 1 s of 4K HEVC",
            peak / MiB,
            "MiB",
            target=Target("value", "<", 300, "< 300 MiB"),
            detail=f"VmHWM; {cpu:.1f} s of CPU, {took:.1f} s on idle CPU",
        ),
    ]
