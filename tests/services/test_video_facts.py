"""A video's blob facts from a real decoding worker's `probe`: what it says, kept
within the record's types; a probe that cannot finish keeps the video undecodable."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from server.imaging import DecodePool, PoolLimits
from server.imaging.formats import MP4, WEBM
from server.services.video_facts import NotAVideo, blob_facts, probe_video
from tests.imaging.test_pool import MiB
from tests.imaging.videos import make_video


@pytest.mark.gen_test(timeout=60)
async def test_a_probe_gives_the_blob_its_facts(tmp_path: Path) -> None:
    pool = DecodePool(PoolLimits(workers=1, budget=256 * MiB, timeout=20))
    try:
        source = make_video(
            tmp_path / "v.mp4", frames=10, metadata={"creation_time": "2023-12-31T23:59:58Z"}
        )
        facts = await probe_video(pool, source, MP4)
        assert facts["kind"] == "video" and facts["codec"] == "h264"
        assert (facts["width"], facts["height"], facts["orientation"]) == (64, 48, None)
        assert facts["duration"] == pytest.approx(1.0, abs=0.11)
        assert facts["taken_at"] == "2023-12-31T23:59:58+00:00"
        assert (facts["decodable"], facts["has_gps"], facts["exif"]) == (True, False, None)
        text = tmp_path / "x.mp4"
        text.write_bytes(b"not a video " * 100)
        with pytest.raises(NotAVideo):
            await probe_video(pool, text, MP4)
    finally:
        await pool.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_probe_out_of_time_keeps_the_video_undecodable(tmp_path: Path) -> None:
    """No time at all to answer: the worker is killed, and the bytes, sniffed as a
    video, are kept without anything known of them but their container."""
    pool = DecodePool(PoolLimits(workers=1, budget=256 * MiB, timeout=0.0001))
    try:
        source = make_video(tmp_path / "v.webm", fmt="webm", codec="libvpx-vp9", frames=2)
        facts = await probe_video(pool, source, WEBM)
        assert facts == blob_facts(WEBM, None)
        assert (facts["format"], facts["mime"], facts["kind"]) == ("WEBM", "video/webm", "video")
        assert facts["decodable"] is False and facts["duration"] is None
    finally:
        await pool.close()


def test_what_a_worker_answers_is_kept_within_the_records_types() -> None:
    odd = {
        "width": -4,
        "height": True,
        "duration": math.inf,
        "taken_at": 12,
        "codec": "x" * 1000,
        "has_gps": "yes",
        "decodable": 1,
    }
    facts = blob_facts(MP4, odd)
    assert (facts["width"], facts["height"], facts["duration"]) == (None, None, None)
    assert (facts["taken_at"], len(facts["codec"])) == (None, 256)
    assert (facts["has_gps"], facts["decodable"]) == (False, False)
    assert blob_facts(MP4, {"duration": -1.0})["duration"] is None
    assert blob_facts(MP4, {"duration": 2})["duration"] == 2.0
    # A Live Photo MOV's pairing key, as text of a bounded length, or nothing.
    assert blob_facts(MP4, {"content_identifier": "A-B"})["live_id"] == "A-B"
    assert blob_facts(MP4, {"content_identifier": 5})["live_id"] is None
    assert len(blob_facts(MP4, {"content_identifier": "x" * 999})["live_id"]) == 256


def padded(data: bytes, extra: int) -> bytes:
    """A phone's layout at any size: the media data first (here grown by `extra` bytes
    after its samples, so every sample offset still holds), the movie header last."""
    at = data.index(b"mdat") - 4
    size = int.from_bytes(data[at : at + 4], "big")
    grown = (size + extra).to_bytes(4, "big")
    return data[:at] + grown + data[at + 4 : at + size] + bytes(extra) + data[at + size :]


def bytes_read(pid: int) -> int:
    with open(f"/proc/{pid}/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


@pytest.mark.gen_test(timeout=60)
async def test_a_probe_reads_the_headers_not_the_file(tmp_path: Path) -> None:
    pool = DecodePool(PoolLimits(workers=1, budget=256 * MiB, timeout=20))
    try:
        small = make_video(tmp_path / "small.mp4", frames=10)
        assert (await probe_video(pool, small, MP4))["decodable"]  # the worker is up
        (pid,) = pool.pids
        big = tmp_path / "big.mp4"
        big.write_bytes(padded(small.read_bytes(), 48 * MiB))
        before = bytes_read(pid)
        facts = await probe_video(pool, big, MP4)
        read = bytes_read(pid) - before
        assert facts["decodable"] and facts["duration"] == pytest.approx(1.0, abs=0.11)
        assert read < 2 * MiB, f"the probe read {read} bytes of a {big.stat().st_size}-byte file"
    finally:
        await pool.close()
