"""`scripts/bench --only download`: an original through Tubei against nginx's sendfile.

nginx (Debian's, apt-installed when missing and the bench runs as root) runs as a
child of the bench, in the foreground, one process, from a generated config on a
loopback port. It serves the very file Tubei stores (a symlink to the blob), so both
read the same pages of the same page cache, and both are read by the same client
(`bench_http.Connection`). Runs alternate; the figure is the median of the pairs'
ratios.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench_http import API, Connection, FileRange, multipart_body
from bench_servers import ServerProcess, TubeiServer
from bench_table import Row, Run, at_least, expect, median, rotated
from nginx_proxy import nginx_binary, temp_paths

MiB = 1024 * 1024
MB = 1_000_000
DOWNLOAD_MIB = 200

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
{temp_paths}
    server {{
        listen 127.0.0.1:{port};
        root {folder}/www;
    }}
}}
"""


class NginxServer(ServerProcess):
    """nginx serving `files` (name: path; symlinks to the files measured) at `/<name>`."""

    def __init__(self, workdir: Path, files: dict[str, Path], label: str = "nginx") -> None:
        super().__init__(workdir, label)
        self.binary = nginx_binary("the download measure")
        self.folder = workdir / label
        www = self.folder / "www"
        www.mkdir(parents=True, exist_ok=True)
        (www / "health").write_text("ok\n")
        for name, path in files.items():
            (www / name).symlink_to(path)
        self.conf = self.folder / "nginx.conf"
        self.conf.write_text(
            NGINX_CONF.format(folder=self.folder, port=self.port, temp_paths=self._temp_paths())
        )

    def _temp_paths(self) -> str:
        return temp_paths(self.binary, self.folder)

    def command(self) -> list[str]:
        return [
            self.binary,
            "-p",
            str(self.folder),
            "-c",
            str(self.conf),
            "-e",
            str(self.folder / "error.log"),
        ]


def upload_original(tubei: TubeiServer, run: Run, mib: int) -> tuple[str, int]:
    """A photo of about `mib` MiB: a real 12-MP JPEG, then random bytes. (sha256, size)."""
    photo = run.camera_jpeg()
    padding = run.random_file(mib)
    size = photo.stat().st_size + mib * MiB
    body, content_type = multipart_body(
        "big.jpg",
        [FileRange(photo, 0, photo.stat().st_size), FileRange(padding, 0, mib * MiB)],
    )
    answer = Connection(tubei.port).request(
        "POST", f"{API}/images", {**tubei.auth(), "Content-Type": content_type}, body
    )
    expect(answer.status == 200, f"upload: {answer.status} {answer.body[:300]!r}")
    item = answer.json()["items"][0]  # type: ignore[index]
    expect(item["size"] == size, f"stored {item['size']} bytes, sent {size}")
    return item["sha256"], size


def case_download(run: Run) -> list[Row]:
    """MB/s of a 200 MiB original: Tubei (sendfile) against nginx (sendfile), same file."""
    rounds = 8 * run.scale.reps  # short runs on a shared machine: many pairs
    with TubeiServer(run.workdir, "download-tubei") as tubei:
        sha, size = upload_original(tubei, run, DOWNLOAD_MIB)
        blob = tubei.data / "blobs" / sha[:2] / sha[2:4] / sha
        expect(blob.stat().st_size == size, f"no blob file at {blob}")
        with NginxServer(run.workdir, {"photo.jpg": blob}) as nginx:
            connections = {"nginx": Connection(nginx.port), "tubei": Connection(tubei.port)}
            paths = {"nginx": "/photo.jpg", "tubei": f"{API}/images/{sha}/original"}
            headers = {"nginx": {}, "tubei": tubei.auth()}
            speeds: dict[str, list[float]] = {"nginx": [], "tubei": []}
            ratios: list[float] = []
            with run.profiling(tubei, "download"):
                for n in range(rounds + 1):
                    for kind in rotated(list(speeds), n):
                        started = time.perf_counter()
                        answer = connections[kind].request(
                            "GET", paths[kind], headers[kind], keep=False
                        )
                        seconds = time.perf_counter() - started
                        expect(
                            answer.status == 200 and answer.length == size,
                            f"{kind}: {answer.status}, {answer.length} of {size} bytes",
                        )
                        if n:  # the first round only warms the page cache
                            speeds[kind].append(size / seconds / MB)
                    if n:
                        ratios.append(speeds["tubei"][-1] / speeds["nginx"][-1])
            run.say(
                f"download: tubei {median(speeds['tubei']):.0f} MB/s, "
                f"nginx {median(speeds['nginx']):.0f} MB/s over {rounds} pairs"
            )
    return [
        Row(
            "download an original",
            median(speeds["tubei"]),
            "MB/s",
            median(speeds["nginx"]),
            "nginx sendfile",
            at_least(0.9),
            f"{DOWNLOAD_MIB} MiB, the same file; median of {rounds} pairs, "
            f"which ranged {min(ratios):.2f}-{max(ratios):.2f}x",
            paired_ratio=median(ratios),
        )
    ]
