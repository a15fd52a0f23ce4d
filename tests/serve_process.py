"""`python -m server serve` as a real process, for tests of what the server itself does
under load: its address, its memory, its log, tokens made beside it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.server_cli import ROOT, cli, environment, free_port, last_line

API = "/api/v1"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    data: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def token(self, user: str = "mum", device: str = "phone") -> str:
        made = cli("token", "--data", str(self.data), "--user", user, "--device", device)
        assert made.returncode == 0, made.stderr
        return last_line(made.stdout)

    def health(self, source: str = "127.0.0.1", timeout: float = 5.0) -> int:
        return health_from(self.port, source, timeout)


def health_from(port: int, source: str, timeout: float) -> int:
    """GET /health from `source` (a 127.0.0.0/8 address); the status, 0 if none came."""

    async def ask() -> int:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), timeout
            )
        except (OSError, TimeoutError):
            return 0
        try:
            writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            line = await asyncio.wait_for(reader.readline(), timeout)
            return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else 0
        except (OSError, TimeoutError, ValueError, IndexError):
            return 0
        finally:
            await close_all([(reader, writer)])

    return asyncio.run(ask())


def _limit_open_files(count: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return apply


@contextmanager
def serving(tmp_path: Path, *flags: str, open_files: int | None = None) -> Iterator[Served]:
    """A server on a free port with `flags`; stopped (and its log kept) at the end."""
    data, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data", str(data), *flags]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=None if open_files is None else _limit_open_files(open_files),
        )
    served = Served(process, port, data, log)
    try:
        deadline = time.monotonic() + 30
        while served.health(timeout=1) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start:\n{served.log_text()}")
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def fetch(url: str, method: str = "GET", body: bytes | None = None, **headers: str) -> int:
    sent = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


# floods ------------------------------------------------------------------------------

Streams = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


async def open_many(port: int, sources: list[str], each: int) -> Streams:
    """`each` connections from every source address; those the server took."""
    opened: Streams = []
    for source in sources:
        for _ in range(each):
            with contextlib.suppress(OSError):
                opened.append(
                    await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
                )
    return opened


async def still_open(streams: Streams, wait: float = 0.5) -> int:
    """How many of these the server has not closed (read for up to `wait` seconds)."""

    async def alive(reader: asyncio.StreamReader) -> bool:
        try:
            return await asyncio.wait_for(reader.read(1), wait) != b""
        except TimeoutError:
            return True
        except OSError:
            return False

    return sum(await asyncio.gather(*(alive(reader) for reader, _ in streams)))


async def close_all(streams: Streams) -> None:
    """Close them, and wait until they are (a socket left to the garbage collector
    after the loop ends is a ResourceWarning in whichever test comes next)."""
    for _, writer in streams:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for _, writer in streams), return_exceptions=True)


def noise_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG of random pixels: as large as a photo of its size gets."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def sources(third: int, count: int) -> list[str]:
    return [f"127.0.{third}.{n}" for n in range(1, count + 1)]
