"""The cluster the tests in this folder run on: real processes, all of the test's own.

A private PostgreSQL (initdb in a temporary folder, as the `postgres` user, on a free
port), a private redis-server, three `python -m server serve` processes A, B and C
sharing one data folder, that catalog and that Redis, and nginx in front of them from
docs/nginx/tubei.conf (scripts/nginx_proxy.py). With `blobs` (an s3:// URL) and
`separate`, each process has a data folder of its own (`data-a`, `data-b`, `data-c`)
and the blobs are in the bucket: nothing is shared on the local disk. Each part can be
stopped, killed and started again on the same port, so a test can restart the database
or SIGKILL a server and nginx still finds it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from scripts.nginx_proxy import NginxProxy, NginxUnavailable, find_nginx, nginx_binary
from tests.redis_server import REDIS_SERVER, RedisServer, redis_server_problem
from tests.server_cli import ROOT, cli, environment, free_port, last_line, request

API = "/api/v1"
NAMES = ("a", "b", "c")


def postgres_bin() -> Path | None:
    """The newest PostgreSQL's binaries folder (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: p.split("/")[4])
    return Path(found[-1]).parent if found else None


def problem() -> str | None:
    """Why the cluster cannot be had here, or None."""
    if postgres_bin() is None:
        return "no initdb under /usr/lib/postgresql/*/bin"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` user to run a private PostgreSQL as"
    if os.geteuid() != 0:
        return "a private PostgreSQL is started as the `postgres` user: run as root"
    redis = redis_server_problem()
    if redis:
        return redis
    if find_nginx() is None:
        try:
            nginx_binary("the cluster tests")
        except (NginxUnavailable, OSError) as error:
            return str(error)
    return None


class Postgres:
    """A PostgreSQL cluster of the tests' own, so that a test may restart it."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None
        self.bin = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="tubei-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/tubei"

    def _as_postgres(self, tool: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr or done.stdout}")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", action, *extra
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def create_database(self) -> None:
        admin = self.url.removesuffix("/tubei") + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE tubei")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class Node:
    """One `serve` process of the cluster, restartable on its port."""

    def __init__(self, name: str, folder: Path, flags: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.log = folder / f"serve-{name}.log"
        self.flags = ["--host", "127.0.0.1", "--port", str(self.port), *flags]
        self.env = env
        self.extra: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", *self.flags, *self.extra],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve {self.name} exited:\n{self.log_text()[-3000:]}")
            try:
                if request(self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve {self.name} did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> int | None:
        if not self.alive():
            return None
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Cluster:
    """PostgreSQL, Redis, serve A/B/C on one data folder (or one each), nginx in front."""

    def __init__(
        self,
        folder: Path,
        *,
        blobs: str | None = None,
        separate: bool = False,
        flags: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.separate = separate
        self.blobs = blobs
        self.postgres = Postgres()
        self.redis = RedisServer()
        self.env = environment(
            TUBEI_CATALOG=self.postgres.url,
            TUBEI_EVENTS=self.redis.url,
            TUBEI_DATA=str(self.data),
            TUBEI_CATALOG_TIMEOUT="2",
            **({"TUBEI_BLOBS": blobs} if blobs else {}),
            **env,
        )
        common = ["--trust-forwarded", "--ping-interval", "60", *flags]
        self.nodes = {
            name: Node(
                name,
                folder,
                common,
                {**self.env, "TUBEI_DATA": str(self.data_of(name))} if separate else self.env,
            )
            for name in NAMES
        }
        self.nginx = NginxProxy(folder / "nginx", [node.port for node in self.nodes.values()])

    def data_of(self, name: str) -> Path:
        """The data folder of serve `name`: its own with `separate`, else the shared one."""
        return self.folder / f"data-{name}" if self.separate else self.data

    @property
    def url(self) -> str:
        """Through nginx."""
        return f"http://127.0.0.1:{self.nginx.port}{API}"

    def start(self) -> None:
        self.postgres.start()
        self.postgres.create_database()
        self.redis.start()
        # Migrations run under an advisory lock: three at once is itself a check.
        for node in self.nodes.values():
            node.spawn()
        for node in self.nodes.values():
            node.wait_ready()
        self.nginx.start()

    def restart(self, name: str, *extra: str) -> None:
        """SIGKILL the node and start it again, with `extra` flags until its next restart."""
        node = self.nodes[name]
        node.kill()
        node.extra = list(extra)
        node.spawn()
        node.wait_ready()

    def ensure_running(self) -> None:
        """Every node up (a test that killed one may have failed before restarting it)."""
        for node in self.nodes.values():
            if not node.alive():
                node.spawn()
                node.wait_ready()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, env=self.env)

    def token(self, user: str, device: str = "phone") -> str:
        made = self.cli("token", "--user", user, "--device", device)
        assert made.returncode == 0, made.stderr
        return last_line(made.stdout)

    def check_store(self) -> None:
        """Every blob row has its file, whole; every entry has its blob row."""
        with psycopg.connect(self.postgres.url) as conn:
            blobs = [row[0] for row in conn.execute("SELECT sha256 FROM blobs").fetchall()]
            orphans = conn.execute(
                "SELECT count(*) FROM entries e LEFT JOIN blobs b ON b.sha256 = e.sha256"
                " WHERE b.sha256 IS NULL"
            ).fetchone()
        assert orphans is not None and orphans[0] == 0
        for sha in blobs:
            path = self.data / "blobs" / sha[:2] / sha[2:4] / sha
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, sha

    def logs(self) -> str:
        parts = [f"--- serve {n.name}\n{n.log_text()[-2500:]}" for n in self.nodes.values()]
        parts.append(f"--- nginx error.log\n{self.nginx.logs()[-2500:]}")
        return "\n".join(parts)

    def close(self) -> None:
        self.nginx.stop()
        for node in self.nodes.values():
            node.stop()
        self.redis.stop()
        self.postgres.remove()


__all__ = ["REDIS_SERVER", "Cluster", "Node", "Postgres", "problem"]
