"""The servers the bench measures, each a process of its own on its own port.

Tubei as `python -m server serve` (`TubeiServer`), the baseline as `scripts/bench_raw.py`
(`RawServer`); a measure with another server subclasses `ServerProcess`. A server is
ready when its health path answers 200 to `bench_http.Connection`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench_http import API, HOST, ROOT, Connection


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, ... of a process, in bytes."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                found[name] = int(value.split()[0]) * 1024
    return found


def environment() -> dict[str, str]:
    # The caller's settings stay out, but for TUBEI_METRICS: runs with metrics on and off compare.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TUBEI_") or k == "TUBEI_METRICS"
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


class ServerProcess:
    """A server in its own process, on its own port, logging to a file."""

    name = "server"

    def __init__(self, workdir: Path, label: str) -> None:
        self.workdir = workdir
        self.env: dict[str, str] = {}  # more environment (credentials a setting reads)
        self.label = label
        self.port = free_port()
        self.log = workdir / f"{label}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env={**environment(), **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited:\n{self.log.read_text()[-3000:]}")
            try:
                answer = Connection(self.port, timeout=2).request("GET", self.health_path())
                if answer.status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def health_path(self) -> str:
        return "/health"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawServer(ServerProcess):
    def __init__(self, workdir: Path, label: str = "raw") -> None:
        super().__init__(workdir, label)
        self.folder = workdir / label
        self.folder.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        script = str(ROOT / "scripts" / "bench_raw.py")
        return [sys.executable, script, "--port", str(self.port), "--dir", str(self.folder)]


class TubeiServer(ServerProcess):
    def __init__(
        self,
        workdir: Path,
        label: str = "tubei",
        data: Path | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, label)
        self.data = data or workdir / label
        self.extra = list(extra)  # more `serve` settings
        self.tokens: dict[str, str] = {}

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--data",
            str(self.data),
            "--log-level",
            "warning",
            *self.extra,
        ]

    def health_path(self) -> str:
        return f"{API}/health"

    def start(self) -> None:
        super().start()
        self.token()  # made now, so that no timed request waits for the command

    def token(self, user: str = "bench") -> str:
        """A bearer token for `user` (made with the CLI, which works beside a server)."""
        if user not in self.tokens:
            made = subprocess.run(
                [sys.executable, "-m", "server", "token", "--data", str(self.data), "--user", user],
                cwd=ROOT,
                env=environment(),
                capture_output=True,
                text=True,
                check=True,
            )
            self.tokens[user] = made.stdout.strip().rsplit("\n", 1)[-1]
        return self.tokens[user]

    def auth(self, user: str = "bench") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}
