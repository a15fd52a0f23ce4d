"""The server's side of the decoding workers: start them, hand them jobs, restart the dead.

A photo someone is waiting for (an `urgent` job: a preview opened) goes to the next free
worker before any background job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


WAIT_FACTOR = 10


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK")


class DecodeFailed(Exception):
    """The worker died, ran out of its memory or out of time: this attempt failed."""


@dataclass(frozen=True)
class PoolLimits:
    workers: int
    budget: int  # bytes a decode may take, decided from the header
    timeout: float  # seconds of CPU a job may take (x10 of waiting) before its worker is killed


class _Worker:
    def __init__(self, number: int, limits: PoolLimits) -> None:
        self.number = number
        self._limits = limits
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def _start(self) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            # One malloc arena: a decoder's threads would each reserve 64 MiB of address
            # space for their own, and the worker's address space is what is capped.
            "MALLOC_ARENA_MAX": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p
            ),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.imaging.worker",
            str(self._limits.budget),
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None
        ready = await process.stdout.readline()
        if not ready:
            await process.wait()
            raise DecodeFailed(f"decoding worker did not start (exit {process.returncode})")
        log.info("decoding worker %d started: %s", self.number, ready.decode().strip())
        return process

    async def run(
        self,
        job: Mapping[str, Any],
        cpu_limit: float | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """The job's answer; `cpu_limit` (seconds of CPU) in place of the pool's timeout, and
        `progress` told of each progress line the worker writes before it."""
        if self._process is None or self._process.returncode is not None:
            self._process = await self._start()
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(job).encode() + b"\n")
            await process.stdin.drain()
            line = await self._answer(process, cpu_limit or self._limits.timeout, progress)
        except TimeoutError as error:
            await self.stop(kill=True)
            raise DecodeFailed(f"{error}: killed") from None
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        except asyncio.CancelledError:
            # Its answer would be read as the next job's: this worker is done.
            self._process = None
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        answer: dict[str, Any] = json.loads(line) if line else {}
        if not line or "failed" in answer:
            code = await process.wait()
            self._process = None
            why = answer.get("failed") or (
                f"killed by signal {-code}" if code < 0 else f"exited with {code}"
            )
            raise DecodeFailed(f"decoding worker {why}")
        return answer

    async def _answer(
        self,
        process: asyncio.subprocess.Process,
        limit: float,
        progress: Callable[[float], None] | None,
    ) -> bytes:
        """The worker's answer line, within its time: `limit` seconds of CPU, or ten
        times that of waiting (a worker on idle priority may wait while uploads run).
        Progress lines before it are handed to `progress`."""
        timeout = limit
        assert process.stdout is not None
        reading = asyncio.ensure_future(process.stdout.readline())
        started, used = time.monotonic(), cpu_seconds(process.pid)
        try:
            while True:
                done, _ = await asyncio.wait({reading}, timeout=min(timeout / 4, 15))
                if done:
                    line = reading.result()
                    if not line.startswith(b'{"progress"'):
                        return line
                    if progress is not None:
                        progress(float(json.loads(line)["progress"]))
                    reading = asyncio.ensure_future(process.stdout.readline())
                    continue
                if cpu_seconds(process.pid) - used > timeout:
                    raise TimeoutError(f"more than {timeout:g} s of CPU")
                if time.monotonic() - started > WAIT_FACTOR * timeout:
                    raise TimeoutError(f"no answer in {WAIT_FACTOR * timeout:g} s")
        finally:
            reading.cancel()

    async def stop(self, kill: bool = False) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        if kill:
            process.kill()
        elif process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


class DecodePool:
    """Workers, and the decode budget shared among them.

    Each job comes with what it is expected to take (`weight`, from the catalog's facts);
    jobs run together only while their weights fit in one budget, so that several
    workers never hold more than one budget's worth of pixels between them. A job alone
    may take the whole budget: each worker's own address space is capped at it.
    """

    def __init__(self, limits: PoolLimits) -> None:
        self.limits = limits
        self._workers = [_Worker(n, limits) for n in range(limits.workers)]
        self._idle = list(self._workers)
        self._waiting: dict[bool, deque[tuple[asyncio.Future[_Worker], int]]] = {
            True: deque(),
            False: deque(),
        }
        self._in_use = 0  # the weights of the jobs running

    @property
    def busy(self) -> int:
        """Workers running a job."""
        return len(self._workers) - len(self._idle)

    @property
    def waiting(self) -> int:
        """Jobs waiting for a worker or for room in the budget."""
        return sum(len(queue) for queue in self._waiting.values())

    @property
    def budget_in_use(self) -> int:
        """Bytes of the decode budget the running jobs are expected to take."""
        return self._in_use

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.pid is not None]

    async def render(
        self,
        source: Path,
        outputs: Mapping[int, Path],
        max_pixels: int,
        *,
        urgent: bool,
        weight: int = 0,
    ) -> str | None:
        """None when every output was written, else why none could be (see derived.render).

        Raises DecodeFailed when the worker did not answer, FileNotFoundError when
        `source` is gone, OSError when an output could not be written.
        """
        return await self._derive({}, source, outputs, max_pixels, urgent, weight)

    async def poster(
        self,
        source: Path,
        outputs: Mapping[int, Path],
        max_pixels: int,
        *,
        urgent: bool,
        weight: int = 0,
    ) -> str | None:
        """A video's poster at each size: as `render`, from one frame (poster.py)."""
        job = {"type": "poster"}
        return await self._derive(job, source, outputs, max_pixels, urgent, weight)

    async def _derive(
        self,
        job: dict[str, Any],
        source: Path,
        outputs: Mapping[int, Path],
        max_pixels: int,
        urgent: bool,
        weight: int,
    ) -> str | None:
        job["source"] = str(source)
        job["outputs"] = {str(size): str(path) for size, path in outputs.items()}
        job["max_pixels"] = max_pixels
        answer = await self._run(job, source, urgent, weight)
        reason: str | None = answer["reason"]
        return reason

    async def probe(self, source: Path, *, urgent: bool = True) -> dict[str, Any] | None:
        """A video's metadata (video.VideoMetadata's fields), read in a worker under its
        CPU timeout and address-space cap; None when it holds no video at all.

        Raises DecodeFailed, FileNotFoundError and OSError as `render` does.
        """
        answer = await self._run({"type": "probe", "source": str(source)}, source, urgent, 0)
        if "not_a_video" in answer:
            return None
        metadata: dict[str, Any] = answer["metadata"]
        return metadata

    async def preview(
        self,
        source: Path,
        output: Path,
        *,
        cpu_limit: float,
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """A video's H.264 preview written to `output` (transcode.py), in a worker with
        `cpu_limit` seconds of CPU: `{"made": True, "preview": {...}}` or `{"made": False,
        "reason": ...}`. Raises as `render` does."""
        job = {"type": "preview", "source": str(source), "output": str(output)}
        return await self._run(job, source, False, self.limits.budget, cpu_limit, progress)

    async def _run(
        self,
        job: Mapping[str, Any],
        source: Path,
        urgent: bool,
        weight: int,
        cpu_limit: float | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        weight = min(max(weight, 0), self.limits.budget)
        worker = await self._acquire(urgent, weight)
        try:
            answer = await worker.run(job, cpu_limit, progress)
        finally:
            self._release(worker, weight)
        if answer.get("missing"):
            raise FileNotFoundError(source)
        if "error" in answer:
            raise OSError(answer.get("errno") or 0, answer["error"])
        return answer

    def _fits(self, weight: int) -> bool:
        return self._in_use == 0 or self._in_use + weight <= self.limits.budget

    async def _acquire(self, urgent: bool, weight: int) -> _Worker:
        if self._idle and not any(self._waiting.values()) and self._fits(weight):
            self._in_use += weight
            return self._idle.pop()
        waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiting[urgent].append((waiter, weight))
        self._dispatch()  # an urgent job may go ahead of background ones that do not fit
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result(), weight)
            raise

    def _release(self, worker: _Worker, weight: int) -> None:
        self._in_use -= weight
        self._idle.append(worker)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand idle workers to waiters, urgent first, in order (the first must fit)."""
        for urgent in (True, False):
            queue = self._waiting[urgent]
            while queue and self._idle:
                waiter, weight = queue[0]
                if waiter.done():
                    queue.popleft()
                    continue
                if not self._fits(weight):
                    return
                queue.popleft()
                self._in_use += weight
                waiter.set_result(self._idle.pop())
            if queue:
                return

    async def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(ProcessLookupError):
                await worker.stop()
