"""Hostile images through the real `python -m server serve` and its decoding workers.

Memory is the server's and its workers' resident set together, sampled from /proc while
they work; the bounds are generous (what they stay under on 2 busy cores), and the
figures themselves are scripts/bench's.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import multipart
from tests.imaging.bombs import BOMBS, png
from tests.server_cli import Server, cli, environment, free_port, last_line, request, serving

MiB = 1024 * 1024
GENEROUS = 400 * MiB


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler:
    """The peak of the server's RSS plus its children's, every few milliseconds."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            total = rss(self.pid) + sum(rss(child) for child in children(self.pid))
            self.peak = max(self.peak, total)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def server(tmp_path: Path, data: Path) -> Iterator[tuple[Server, str]]:
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    with serving(tmp_path, flags, environment(), port) as running:
        made = cli("token", "--data", str(data), "--user", "erin")
        assert made.returncode == 0, made.stderr
        yield running, last_line(made.stdout)


def upload(running: Server, token: str, name: str, data: bytes) -> dict[str, object]:
    body, content_type = multipart([("file", name, data)])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    status, _, answer = request(running.url + "/images", "POST", body, headers)
    assert status == 200, answer
    item: dict[str, object] = json.loads(answer)["items"][0]
    return item


def healthy(running: Server) -> None:
    status, _, body = request(running.url + "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"


def wait_for_thumbnail(running: Server, token: str, sha: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = running.fetch(f"/images/{sha}/thumbnail", token)
        if status == 200:
            return
        healthy(running)
        time.sleep(0.05)
    raise AssertionError(f"no thumbnail of {sha}")


def test_bombs_are_kept_and_memory_stays_bounded_while_health_answers(tmp_path: Path) -> None:
    # Beside the bombs, a photo whose decode is real and large (7000 x 5000 RGBA, 140 MB
    # decoded, under the budget): the worker does its work while the bombs are judged.
    big = png(7000, 5000)
    with server(tmp_path, tmp_path / "data") as (running, token):
        with Sampler(running.process.pid) as sampler:
            heavy = upload(running, token, "big.png", big)
            kept = []
            for name, make in sorted(BOMBS.items()):
                data, ext = make()
                item = upload(running, token, f"{name}.{ext}", data)
                assert item["thumbnail"] is False, name  # judged from the header at once
                kept.append((item, data))
                healthy(running)
            wait_for_thumbnail(running, token, str(heavy["sha256"]))
        for item, data in kept:
            status, body = running.fetch(f"/images/{item['sha256']}/original", token)
            assert status == 200 and body == data
            status, _ = running.fetch(f"/images/{item['sha256']}/thumbnail?size=preview", token)
            assert status == 404
        assert sampler.peak < GENEROUS, f"peak {sampler.peak / MiB:.0f} MiB"
        assert running.stop() == 0


def test_a_kill_during_a_decode_and_a_restart_that_stays_small(tmp_path: Path) -> None:
    data = tmp_path / "data"
    big = png(8000, 6000, color_type=2)  # 48 MP RGB: 192 MB decoded, under the budget
    with server(tmp_path, data) as (running, token):
        with Sampler(running.process.pid) as sampler:
            item = upload(running, token, "big.png", big)
            deadline = time.monotonic() + 30
            decoding = None
            while decoding is None and time.monotonic() < deadline:
                for child in children(running.process.pid):
                    if rss(child) > 120 * MiB:
                        decoding = child
                time.sleep(0.002)
            assert decoding is not None, "the decode was not seen"
            running.process.send_signal(signal.SIGKILL)  # as the OOM killer would
            running.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{decoding}") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not os.path.exists(f"/proc/{decoding}"), "the worker outlived the server"
        assert sampler.peak < GENEROUS

    with server(tmp_path, data) as (restarted, token):
        with Sampler(restarted.process.pid) as sampler:
            wait_for_thumbnail(restarted, token, str(item["sha256"]))
        assert sampler.peak < GENEROUS, f"peak {sampler.peak / MiB:.0f} MiB"
        assert restarted.stop() == 0
