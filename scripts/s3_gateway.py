"""A single-node Ceph RADOS Gateway on loopback, for the S3 tests and the bench.

One monitor, one OSD on memstore (its data lives in RAM), one radosgw, all under one
temporary folder with free loopback ports. `radosgw` alone can be stopped and started
again and keeps the data; the OSD cannot (memstore).

    scripts/s3-gateway start   start one, print its folder and `export` lines
    scripts/s3-gateway env     the `export` lines of the running one
    scripts/s3-gateway stop    stop it and remove its folder

Used from Python through `Gateway.start()` (tests/s3_gateway.py builds the pytest
fixture on it).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("radosgw", "ceph-mon", "ceph-osd")
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
ACCESS_KEY = "TUBEITESTACCESSKEY00"
SECRET_KEY = "tubei-test-secret-key-0000000000000000000"
START_TIMEOUT = 150.0
PR_SET_PDEATHSIG = 1
# Where `scripts/s3-gateway start` leaves the state of the gateway it started.
STATE = Path(
    os.environ.get("TUBEI_S3_GATEWAY_STATE")
    or Path(tempfile.gettempdir()) / "tubei-s3-gateway.json"
)


class GatewayUnavailable(Exception):
    """No gateway here: Ceph is not installed (and cannot be) or it did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def install() -> None:
    """apt-get install the packages when a binary is missing (as root only)."""
    if not _missing():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise GatewayUnavailable(f"Ceph is not installed ({', '.join(_missing())} missing)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    run = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
    if run.returncode != 0:  # an old or empty package list: refresh it once
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        run = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
    if run.returncode != 0 or _missing():
        tail = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise GatewayUnavailable(f"apt-get could not install Ceph: {tail[0]}")


@dataclass
class Gateway:
    root: Path
    mon_port: int
    rgw_port: int
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    pids: dict[str, int] = field(default_factory=dict)
    # Daemons die with this process (tests, bench); not for `scripts/s3-gateway start`.
    tied: bool = True
    _timeout: float = START_TIMEOUT
    _deadline: float = 0.0
    # The children started from this process (kept, so they are waited for).
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    @property
    def conf(self) -> Path:
        return self.root / "ceph.conf"

    def env(self) -> dict[str, str]:
        return {
            "TUBEI_S3_ENDPOINT": self.endpoint,
            "TUBEI_S3_ACCESS_KEY_ID": self.access_key,
            "TUBEI_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    # start-up ----------------------------------------------------------------

    @classmethod
    def start(cls, timeout: float = START_TIMEOUT, tied: bool = True) -> Gateway:
        install()
        root = Path(tempfile.mkdtemp(prefix="tubei-s3-"))
        gateway = cls(root, free_port(), free_port(), tied=tied)
        try:
            gateway._timeout = timeout
            gateway._deadline = time.monotonic() + timeout
            gateway._bootstrap(gateway._deadline)
        except BaseException:
            gateway.stop()
            raise
        return gateway

    def _write_conf(self) -> None:
        root = self.root
        self.conf.write_text(
            f"""[global]
fsid = {self._fsid}
mon host = v1:127.0.0.1:{self.mon_port}
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
# Placed in the CRUSH map by hand before it starts: no updates of its own at start-up
# (which the monitor may refuse while it is still settling in).
osd crush update on start = false
osd class update on start = false
# A cap, not a reservation: what the tests and the bench keep at once (the bench's
# 1 GiB upload, and objects deleted but not yet collected) fits in it.
memstore device bytes = 8589934592
run dir = {root}/run
log file = {root}/log/$name.log
admin socket = {root}/run/$name.asok
keyring = {root}/keyring
ms bind ipv6 = false
public addr = 127.0.0.1
mon data = {root}/mon/$name
osd data = {root}/osd/$name

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{self.rgw_port}
rgw data = {root}/rgw
rgw dns name = 127.0.0.1
rgw thread pool size = 64
# Deleted objects' space back within a minute or two, not hours (memstore is RAM).
rgw gc obj min wait = 60
rgw gc processor period = 60
log file = {root}/log/rgw.log
"""
        )

    def _ceph(self, *args: str) -> str:
        """A `ceph` command, tried again while the monitor is still settling in."""
        deadline = self._deadline
        while True:
            run = subprocess.run(
                ["ceph", "-c", str(self.conf), "--connect-timeout", "20", *args],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
            if run.returncode == 0:
                return run.stdout.decode()
            if time.monotonic() > deadline:
                said = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise GatewayUnavailable(
                    f"ceph {' '.join(args)}: {said[0]} (given up after {self._timeout:.0f} s)"
                )
            time.sleep(0.5)

    def _run(self, *command: str) -> None:
        run = subprocess.run(
            [*command, "-c", str(self.conf)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        if run.returncode != 0:
            raise GatewayUnavailable(
                f"{command[0]}: {run.stderr.decode(errors='replace').strip()[-300:]}"
            )

    def _daemon(self, name: str, *command: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 - the child keeps it
        with log:
            process = subprocess.Popen(
                [*command, "-c", str(self.conf), "-f"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.tied else None,
            )
        self.pids[name] = process.pid
        self.children[name] = process
        self._save()

    def _bootstrap(self, deadline: float) -> None:
        import uuid

        self._fsid = str(uuid.uuid4())
        for folder in ("run", "log", "mon/mon.a", "osd/osd.0", "rgw"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._write_conf()
        monmap = str(self.root / "monmap")
        self._run(
            "monmaptool", "--create", "--fsid", self._fsid, "--addv", "a",
            f"[v1:127.0.0.1:{self.mon_port}]", monmap,
        )  # fmt: skip
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
        self._daemon("mon", "ceph-mon", "-i", "a")
        self._ceph("osd", "create")
        self._run("ceph-osd", "-i", "0", "--mkfs")
        self._ceph("osd", "crush", "add", "osd.0", "1", "root=default", "host=localhost")
        self._daemon("osd", "ceph-osd", "-i", "0")
        self.start_rgw()
        self._wait_for_s3(deadline)
        self._admin_user()

    def _admin_user(self) -> None:
        run = subprocess.run(
            [
                "radosgw-admin", "-c", str(self.conf), "-n", "client.rgw.a",
                "user", "create", "--uid", "tubei", "--display-name", "Tubei tests",
                "--access-key", self.access_key, "--secret", self.secret_key,
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        if run.returncode != 0:
            raise GatewayUnavailable(
                f"radosgw-admin user create: {run.stderr.decode(errors='replace').strip()}"
            )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint, timeout=2) as response:
                return bool(response.status)
        except urllib.error.HTTPError:
            return True  # any S3 answer (403 for an anonymous list) means it is serving
        except OSError:
            return False

    def _wait_for_s3(self, deadline: float) -> None:
        while not self._answers():
            if time.monotonic() > deadline:
                raise GatewayUnavailable(
                    f"the gateway did not answer S3 on {self.endpoint} within "
                    f"{self._timeout:.0f} s (radosgw said: {self._last_words('rgw')})"
                )
            for name, process in self.children.items():
                if process.poll() is not None:
                    raise GatewayUnavailable(f"{name} exited: {self._last_words(name)}")
            time.sleep(0.5)

    def _last_words(self, name: str) -> str:
        """The last line a daemon printed (the folder is gone once start-up gives up)."""
        try:
            lines = (self.root / "log" / f"{name}.out").read_text(errors="replace").splitlines()
        except OSError:
            return "no output"
        said = [line.strip() for line in lines if line.strip()]
        return said[-1][-300:] if said else "no output"

    # radosgw alone, for fault tests ------------------------------------------------

    def start_rgw(self, wait: float | None = None) -> None:
        self._daemon("rgw", "radosgw", "-n", "client.rgw.a")
        if wait is not None:
            self._wait_for_s3(time.monotonic() + wait)

    def stop_rgw(self) -> None:
        pid = self.pids.pop("rgw", None)
        if pid is not None:
            _kill(pid, self.children.pop("rgw", None))
        self._save()

    # the end ---------------------------------------------------------------------

    def stop(self) -> None:
        for name in ("rgw", "osd", "mon"):
            pid = self.pids.pop(name, None)
            if pid is not None:
                _kill(pid, self.children.pop(name, None))
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            if json.loads(STATE.read_text()).get("root") == str(self.root):
                STATE.unlink()

    def _save(self) -> None:
        # Kept beside the folder so `stop` finds the processes even from another shell.
        (self.root / "gateway.json").write_text(json.dumps(self._state()))

    def _state(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "mon_port": self.mon_port,
            "rgw_port": self.rgw_port,
            "pids": self.pids,
        }

    @classmethod
    def load(cls, state: dict[str, object]) -> Gateway:
        pids = state["pids"]
        assert isinstance(pids, dict)
        return cls(
            Path(str(state["root"])),
            int(str(state["mon_port"])),
            int(str(state["rgw_port"])),
            pids={str(k): int(v) for k, v in pids.items()},
            tied=False,
        )


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it goes (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _kill(pid: int, process: subprocess.Popen[bytes] | None = None, grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; reap it if ours."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if process is not None:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            process.wait()
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:  # not our child: poll until it is gone
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _exports(gateway: Gateway) -> str:
    return "".join(f"export {key}={value}\n" for key, value in gateway.env().items())


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "start":
        if STATE.exists():
            print(f"a gateway is running already ({STATE}); stop it first", file=sys.stderr)
            return 1
        try:
            gateway = Gateway.start(tied=False)
        except GatewayUnavailable as error:
            print(f"S3 gateway unavailable: {error}", file=sys.stderr)
            return 1
        STATE.write_text(json.dumps(gateway._state()))
        print(f"# S3 gateway in {gateway.root}", file=sys.stderr)
        sys.stdout.write(_exports(gateway))
        return 0
    if command in ("env", "stop"):
        try:
            gateway = Gateway.load(json.loads(STATE.read_text()))
        except FileNotFoundError:
            print("no gateway is running", file=sys.stderr)
            return 1
        if command == "env":
            sys.stdout.write(_exports(gateway))
        else:
            gateway.stop()
        return 0
    print("usage: scripts/s3-gateway start|env|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
