"""nginx in front of several Tubei processes, from docs/nginx/tubei.conf.

    python scripts/nginx_proxy.py --port 8080 --upstream 8001,8002,8003

runs Debian's nginx (apt-installed when missing and we run as root) in the
foreground as this process's child, on 127.0.0.1:PORT, with the example config's
upstream servers replaced by 127.0.0.1:<each upstream port>. Its folder (config, pid,
logs, temp files) is a temporary one unless --folder names one. Ctrl-C stops it.

The cluster tests (tests/cluster/) and the download bench (`nginx_binary`,
`temp_paths`) use it from Python.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "nginx" / "tubei.conf"
NGINX_PACKAGES = ("nginx-light", "nginx")  # Debian 12 has both; later releases only nginx

MAIN_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$remote_addr "$request" $status $body_bytes_sent '
                        'upstream=$upstream_addr upstream_status=$upstream_status '
                        'time=$request_time';
    access_log {folder}/access.log upstream;
{temp_paths}
{site}
}}
"""


class NginxUnavailable(RuntimeError):
    """nginx is not installed and cannot be installed here."""


def find_nginx() -> str | None:
    for found in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if found and os.access(found, os.X_OK):
            return found
    return None


def nginx_binary(needed_by: str = "this") -> str:
    """nginx's path; installs Debian's package first if it is missing and we may."""
    found = find_nginx()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise NginxUnavailable(
            f"{needed_by} needs nginx: sudo apt-get install -y nginx-light (or nginx)"
        )
    print("  installing nginx (apt-get)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for package in NGINX_PACKAGES:
        installed = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if installed.returncode == 0:
            break
    found = find_nginx()
    if found:
        return found
    raise NginxUnavailable(f"apt-get could not install any of {', '.join(NGINX_PACKAGES)}")


def temp_paths(binary: str, folder: Path) -> str:
    """Temp folders of its own for the modules built in (not /var/lib/nginx)."""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    lines = [f"    client_body_temp_path {folder}/body;"]
    for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
        if not re.search(rf"--without-http_{module}_module\b", built):
            lines.append(f"    {module}_temp_path {folder}/{module};")
    return "\n".join(lines)


def site_config(example: str, port: int, upstreams: Sequence[int]) -> str:
    """The example with the servers of each of its upstream blocks, and its listen
    address, replaced."""
    blocks = list(re.finditer(r"upstream\s+(\w+)\s*\{(.*?)\n\}", example, re.S))
    if not any(block.group(1) == "tubei" for block in blocks):
        raise ValueError("the example config has no `upstream tubei { ... }` block")
    servers = "".join(f"\n    server 127.0.0.1:{upstream};" for upstream in upstreams)
    site, end = "", 0
    for block in blocks:
        body = re.sub(r"(?m)^\s*server\s+[^;]+;\n", "", block.group(2))
        site += example[end : block.start(2)] + servers + ("" if body.startswith("\n") else "\n")
        site += body
        end = block.end(2)
    site += example[end:]
    site, listens = re.subn(r"(?m)^(\s*)listen\s+[^;]+;", rf"\g<1>listen 127.0.0.1:{port};", site)
    if listens != 1:
        raise ValueError(f"the example config should listen once, not {listens} times")
    return site


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class NginxProxy:
    """nginx on 127.0.0.1:`port` in front of 127.0.0.1:`upstreams`, a child process."""

    def __init__(
        self,
        folder: Path,
        upstreams: Sequence[int],
        port: int | None = None,
        example: Path = EXAMPLE,
    ) -> None:
        self.binary = nginx_binary("the nginx proxy")
        self.folder = folder
        self.port = free_port() if port is None else port
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "nginx.conf"
        self.conf.write_text(
            MAIN_CONF.format(
                folder=folder,
                temp_paths=temp_paths(self.binary, folder),
                site=site_config(example.read_text(), self.port, upstreams),
            )
        )
        self.error_log = folder / "error.log"
        self.access_log = folder / "access.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        command = [self.binary, "-p", str(self.folder), "-c", str(self.conf)]
        command += ["-e", str(self.error_log)]
        with (self.folder / "nginx.out").open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not listen:\n{self.logs()}") from None
                time.sleep(0.05)

    def logs(self) -> str:
        texts = [p.read_text(errors="replace") for p in (self.error_log,) if p.exists()]
        return "\n".join(texts)[-4000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> NginxProxy:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="loopback port nginx listens on")
    parser.add_argument(
        "--upstream",
        default="8001,8002,8003",
        help="comma-separated loopback ports of the Tubei processes",
    )
    parser.add_argument("--conf", type=Path, default=EXAMPLE, help="the site config to run")
    parser.add_argument("--folder", type=Path, help="nginx's folder (default: a temporary one)")
    args = parser.parse_args(argv)
    upstreams = [int(port) for port in args.upstream.split(",") if port]
    folder = args.folder or Path(tempfile.mkdtemp(prefix="tubei-nginx-"))
    try:
        proxy = NginxProxy(folder, upstreams, args.port, args.conf)
    except (NginxUnavailable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # SIGTERM (systemd, `kill`) stops nginx too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    proxy.start()
    print(f"nginx on http://127.0.0.1:{proxy.port} -> {upstreams}; its folder is {folder}")
    try:
        assert proxy.process is not None
        return proxy.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        proxy.stop()


if __name__ == "__main__":
    sys.exit(main())
