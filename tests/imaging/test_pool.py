"""Decoding workers: real processes, limited, restarted when they die."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from server.imaging import DecodeFailed, DecodePool, PoolLimits
from tests.imaging.bombs import encode

MiB = 1024 * 1024
MAX_PIXELS = 250_000_000


def photo(path: Path, size: tuple[int, int] = (800, 600)) -> Path:
    path.write_bytes(encode(Image.new("RGB", size, (20, 120, 220)), "JPEG"))
    return path


def limits(**overrides: float) -> PoolLimits:
    values: dict[str, float] = {"workers": 1, "budget": 64 * MiB, "timeout": 20.0}
    values.update(overrides)
    return PoolLimits(int(values["workers"]), int(values["budget"]), values["timeout"])


async def started(pool: DecodePool) -> None:
    """Until the pool's worker process is running (it starts with its first job)."""
    for _ in range(1000):
        if pool.pids:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no worker started")


def address_space_limit(pid: int) -> int:
    for row in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if row.startswith("Max address space"):
            return int(row.split()[3])
    raise AssertionError("no address space limit")


def finish(fifo: Path) -> None:
    """Write the FIFO a worker is blocked reading: its read ends (not an image)."""
    fifo.write_bytes(b"not an image")


@pytest.mark.gen_test(timeout=30)
async def test_a_worker_makes_thumbnails_and_its_address_space_is_capped(tmp_path: Path) -> None:
    pool = DecodePool(limits())
    try:
        out = tmp_path / "t.jpg"
        assert (
            await pool.render(photo(tmp_path / "p.jpg"), {360: out}, MAX_PIXELS, urgent=False)
            is None
        )
        with Image.open(out) as thumb:
            assert thumb.size == (360, 270)
        [pid] = pool.pids
        assert pid != os.getpid()
        soft = address_space_limit(pid)
        assert 64 * MiB < soft < 64 * MiB + 512 * MiB
    finally:
        await pool.close()
    assert pool.pids == []


@pytest.mark.gen_test(timeout=30)
async def test_a_killed_worker_fails_its_job_and_is_restarted(tmp_path: Path) -> None:
    pool = DecodePool(limits())
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)  # opening it blocks the worker: a decode that never ends
    try:
        job = asyncio.ensure_future(
            pool.render(fifo, {360: tmp_path / "a.jpg"}, MAX_PIXELS, urgent=False)
        )
        await started(pool)
        [pid] = pool.pids
        await asyncio.sleep(0.2)
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        with pytest.raises(DecodeFailed, match="signal 9"):
            await job
        out = tmp_path / "b.jpg"
        assert (
            await pool.render(photo(tmp_path / "p.jpg"), {360: out}, MAX_PIXELS, urgent=False)
            is None
        )
        assert out.exists() and pool.pids != [pid]
    finally:
        await pool.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_job_over_its_time_is_killed(tmp_path: Path) -> None:
    pool = DecodePool(limits(timeout=0.2))
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    try:
        started = time.monotonic()
        # Blocked, it uses no CPU: it is killed after ten times its time of waiting.
        with pytest.raises(DecodeFailed, match="no answer in 2 s"):
            await pool.render(fifo, {360: tmp_path / "a.jpg"}, MAX_PIXELS, urgent=False)
        assert time.monotonic() - started < 10
        assert (
            await pool.render(
                photo(tmp_path / "p.jpg"), {360: tmp_path / "b.jpg"}, MAX_PIXELS, urgent=False
            )
            is None
        )
    finally:
        await pool.close()


@pytest.mark.gen_test(timeout=30)
async def test_someone_waiting_goes_before_the_background(tmp_path: Path) -> None:
    pool = DecodePool(limits())
    fifo = tmp_path / "slow"
    os.mkfifo(fifo)
    source = photo(tmp_path / "p.jpg")
    finished: list[str] = []

    async def job(name: str, path: Path, urgent: bool) -> None:
        await pool.render(path, {360: tmp_path / f"{name}.jpg"}, MAX_PIXELS, urgent=urgent)
        finished.append(name)

    try:
        busy = asyncio.ensure_future(job("busy", fifo, False))
        await started(pool)
        background = asyncio.ensure_future(job("background", source, False))
        await asyncio.sleep(0.05)
        opened = asyncio.ensure_future(job("opened", source, True))
        await asyncio.sleep(0.05)
        finish(fifo)
        await asyncio.gather(busy, background, opened)
        assert finished == ["busy", "opened", "background"]
    finally:
        await pool.close()


def test_the_address_space_limit_turns_an_allocation_into_memory_error() -> None:
    code = (
        "from server.imaging.worker import limit_address_space\n"
        f"limit_address_space({32 * MiB})\n"
        "try:\n"
        f"    bytearray({512 * MiB})\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "refused", done.stderr


@pytest.mark.gen_test(timeout=30)
async def test_workers_share_one_budget(tmp_path: Path) -> None:
    pool = DecodePool(limits(workers=2, budget=64 * MiB))
    fifo = tmp_path / "slow"
    os.mkfifo(fifo)
    source = photo(tmp_path / "p.jpg")
    try:
        heavy = asyncio.ensure_future(
            pool.render(fifo, {360: tmp_path / "a.jpg"}, MAX_PIXELS, urgent=False, weight=40 * MiB)
        )
        await started(pool)
        second = tmp_path / "b.jpg"
        waiting = asyncio.ensure_future(
            pool.render(source, {360: second}, MAX_PIXELS, urgent=False, weight=40 * MiB)
        )
        await asyncio.sleep(0.5)
        assert not second.exists() and not waiting.done()  # it would not fit beside the first
        light = tmp_path / "c.jpg"
        assert await pool.render(source, {360: light}, MAX_PIXELS, urgent=True, weight=MiB) is None
        finish(fifo)
        await heavy
        assert await waiting is None and second.exists()
    finally:
        await pool.close()
