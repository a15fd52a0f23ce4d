"""Video jobs in real decoding workers: posters and metadata, bombs never decoded."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from server.imaging import DecodePool
from server.imaging.budget import video_frame

from .test_pool import MAX_PIXELS, MiB, limits, photo
from .videos import RED, bomb_mp4, make_video, patch_dimensions


@pytest.mark.gen_test(timeout=60)
async def test_posters_and_metadata_in_a_worker(tmp_path: Path) -> None:
    pool = DecodePool(limits())
    try:
        source = make_video(tmp_path / "v.mov", fmt="mov", rotation=90, frames=20)
        facts = await pool.probe(source)
        assert facts is not None
        assert (facts["width"], facts["height"], facts["codec"]) == (48, 64, "h264")
        assert facts["duration"] == pytest.approx(2.0, abs=0.05) and facts["decodable"]
        outputs = {360: tmp_path / "g.jpg", 1440: tmp_path / "p.jpg"}
        assert await pool.poster(source, outputs, MAX_PIXELS, urgent=False) is None
        with Image.open(outputs[360]) as img:
            assert img.size == (48, 64)
            assert all(abs(a - b) < 40 for a, b in zip(img.getpixel((2, 32)), RED, strict=False))  # type: ignore[arg-type]
        not_video = tmp_path / "x.mp4"
        not_video.write_bytes(b"plain text " * 100)
        assert await pool.probe(not_video) is None
        with pytest.raises(FileNotFoundError):
            await pool.probe(tmp_path / "gone.mp4")
    finally:
        await pool.close()


@pytest.mark.gen_test(timeout=60)
async def test_bombs_are_never_decoded_and_the_worker_goes_on(tmp_path: Path) -> None:
    pool = DecodePool(limits(budget=64 * MiB))
    try:
        real = make_video(tmp_path / "v.mp4").read_bytes()
        bombs = {
            "huge.mp4": patch_dimensions(real, 60000, 60000),
            "years.mp4": bomb_mp4(duration=20 * 365 * 24 * 3600),
            "tracks.mp4": bomb_mp4(tracks=4000),
        }
        pids = None
        for name, data in bombs.items():
            source = tmp_path / name
            source.write_bytes(data)
            out = tmp_path / f"{name}.jpg"
            reason = await pool.poster(source, {360: out}, MAX_PIXELS, urgent=False)
            assert reason is not None and not out.exists()
            facts = await pool.probe(source)
            assert facts is not None and not facts["decodable"]
            pids = pids or pool.pids
            assert pool.pids == pids  # the same worker, alive
        # Over the worker's budget, from the header: refused, not attempted.
        big = make_video(tmp_path / "big.mp4", size=(1920, 1080), frames=1)
        small = DecodePool(limits(budget=video_frame(1920, 1080, 12).bytes - 1))
        try:
            reason = await small.poster(big, {360: tmp_path / "b.jpg"}, MAX_PIXELS, urgent=True)
            assert reason is not None and "over the budget" in reason
        finally:
            await small.close()
        # Photos still decode in the same worker afterwards.
        out = tmp_path / "photo.jpg"
        assert (
            await pool.render(photo(tmp_path / "p.jpg"), {360: out}, MAX_PIXELS, urgent=True)
            is None
        )
        assert out.exists() and pool.pids == pids
    finally:
        await pool.close()
