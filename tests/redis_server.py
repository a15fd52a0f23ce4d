"""Redis for the tests: the machine's own at 127.0.0.1:6379, or a private one per test.

Tests of the hub use the machine's Redis, each run on channels of its own (a random
prefix: pub/sub ignores database numbers, so a db index alone would not keep two runs
apart). Tests that stop Redis start their own `redis-server` on a free loopback port.
Where either is missing, those tests are skipped and the run's header says why.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from functools import cache
from pathlib import Path

import pytest

SHARED_HOST, SHARED_PORT = "127.0.0.1", 6379
SHARED_URL = f"redis://{SHARED_HOST}:{SHARED_PORT}/0"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@cache
def shared_redis_problem() -> str | None:
    if ping(SHARED_HOST, SHARED_PORT):
        return None
    return f"no Redis answers at {SHARED_HOST}:{SHARED_PORT}: the Redis event-hub tests are skipped"


def redis_server_problem() -> str | None:
    if Path(REDIS_SERVER).is_file():
        return None
    return "no redis-server binary: the tests that restart Redis are skipped"


def report_line() -> str:
    problems = [p for p in (shared_redis_problem(), redis_server_problem()) if p]
    return "redis: " + ("; ".join(problems) if problems else f"{SHARED_URL} and redis-server")


def needs_shared_redis() -> None:
    problem = shared_redis_problem()
    if problem:
        pytest.skip(problem)


def unique_prefix() -> str:
    return f"tubei-test-{uuid.uuid4().hex[:12]}:"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A redis-server of the test's own: started, killed with SIGKILL, started again."""

    def __init__(self, tls: bool = False) -> None:
        problem = redis_server_problem()
        if problem:
            pytest.skip(problem)
        if tls and not shutil.which("openssl"):
            pytest.skip("no openssl to make a certificate: the TLS test is skipped")
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        # A short folder: unix socket paths are limited to about 100 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="tubei-redis-"))
        self.socket_path = self.folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def certificate(self) -> Path:
        return self.folder / "cert.pem"

    @property
    def tls_url(self) -> str:
        return f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.certificate}"

    def _tls_flags(self) -> list[str]:
        if self.tls_port is None:
            return []
        key = self.folder / "key.pem"
        if not self.certificate.exists():
            subprocess.run(
                [
                    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                    *("-keyout", str(key), "-out", str(self.certificate)),
                    *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
                ],
                check=True,
                capture_output=True,
            )
        return [
            *("--tls-port", str(self.tls_port), "--tls-auth-clients", "no"),
            *("--tls-cert-file", str(self.certificate), "--tls-key-file", str(key)),
        ]

    def start(self) -> RedisServer:
        assert self.process is None or self.process.poll() is not None
        flags = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "save": "",
            "appendonly": "no",
            "dir": str(self.folder),
        }
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                *(part for name, value in flags.items() for part in (f"--{name}", value)),
                *self._tls_flags(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not ping("127.0.0.1", self.port, 0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class Relay:
    """A TCP relay to Redis that a test can cut, mend, or slow: a network in between."""

    def __init__(self, target_port: int, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay  # added to every chunk sent towards Redis
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._relays: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def mend(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        relays, self._relays = self._relays, set()
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        self._writers.append(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.append(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer, self.delay), self._pipe(up_reader, writer, 0.0)
        )

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float) -> None:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await chunks.get()
                if not data:
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                sink.write(data)
                await sink.drain()

        forwarding = asyncio.create_task(forward())
        try:
            while data := await source.read(65536):
                chunks.put_nowait((loop.time() + delay, data))
            chunks.put_nowait((loop.time() + delay, b""))
            await forwarding
        except OSError:
            pass
        finally:
            forwarding.cancel()
            await asyncio.gather(forwarding, return_exceptions=True)
            sink.transport.abort()
