"""What a connection may cost, against a real `serve` process on loopback.

Floods are bounded in count and time; the limits are lowered by settings so that
each test takes seconds. Memory is judged as RSS growth against a generous bound
(the figures measured here are printed, for the record).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from server.connections import EverySecond
from tests.serve_process import close_all, open_many, serving, sources, still_open

# idle connections -------------------------------------------------------------------


def test_an_idle_connection_flood_past_the_open_file_limit_locks_nobody_out(
    tmp_path: Path,
) -> None:
    # 400 descriptors: the caps are fitted under it, so the flood never exhausts them.
    flags = ["--max-connections-per-address", "40", "--header-timeout", "3"]
    with serving(tmp_path, *flags, open_files=400) as served:
        rss_before = served.rss_mib()

        async def flood() -> tuple[int, int, int, list[int]]:
            # The finding: one address opening ~1,100 connections that never send headers.
            one = await open_many(served.port, ["127.0.0.1"], 600)
            answers = [await asyncio.to_thread(served.health, "127.0.9.1", 5)]
            # Then many addresses, together past what the descriptors allow: newcomers
            # with a request take the place of connections that never sent one.
            many = await open_many(served.port, sources(2, 20), 30)
            answers += [
                await asyncio.to_thread(served.health, f"127.0.9.{n}", 5) for n in range(2, 5)
            ]
            alive_one, alive_many = await still_open(one), await still_open(many)
            # The flood is still there: past the header timeout its connections are gone.
            await asyncio.sleep(4.5)
            after = await still_open(one + many, wait=0.2)
            await close_all(one + many)
            return alive_one, alive_many, after, answers

        alive_one, alive_many, after, answers = asyncio.run(flood())
        rss_after = served.rss_mib()
        healthy_after = served.health("127.0.9.9")
        log = served.log_text()
    print(
        f"idle flood: {alive_one} + {alive_many} held, RSS {rss_before:.0f} -> {rss_after:.0f} MiB"
    )
    assert alive_one <= 40  # the cap per address
    assert alive_one + alive_many < 400  # the cap fitted under the open-file limit
    assert "Too many open files" not in log
    assert "serving at most" in log  # the fitted caps are said at start-up
    assert "(--max-connections-per-address)" in log
    assert after == 0  # the header timeout closed every idle connection
    assert healthy_after == 200
    assert answers == [200] * 4
    # Refusals are logged at most about once a second, not once each.
    assert log.count("refusing connections") < 20, log[-2000:]
    assert rss_after - rss_before < 100


def test_the_log_says_a_refusal_at_most_once_a_second(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    limited = EverySecond(logging.getLogger("tests.every_second"), interval=0.2)
    with caplog.at_level(logging.WARNING, logger="tests.every_second"):
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            limited.warning("refusing %d", 1)
    assert 2 <= len(caplog.records) <= 4
    assert "more like it held back" in caplog.records[-1].getMessage()


# out of descriptors ---------------------------------------------------------------------

# A LimitedHTTPServer whose caps do not fit its open-file limit (as when descriptors
# go to something else): it must back off and recover, not spin and log each EMFILE.
OUT_OF_FILES = r"""
import asyncio, logging, os, resource, sys
import tornado.web
from server.connections import LimitedHTTPServer, Policy

class Health(tornado.web.RequestHandler):
    def get(self):
        self.write("ok")

async def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    policy = Policy(max_connections=1000, per_address=1000, max_header_size=16384,
                    header_timeout=1.0, body_timeout=5.0, unauthenticated_body=65536)
    app = tornado.web.Application([("/api/v1/health", Health)])
    server = LimitedHTTPServer(app, policy=policy)
    server.listen(int(sys.argv[1]), "127.0.0.1")
    in_use = len(os.listdir("/proc/self/fd"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 30, hard))
    print("ready", flush=True)
    await asyncio.sleep(float(sys.argv[2]))

asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_the_accept_loop_backs_off_and_recovers(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.serve_process import health_from
    from tests.server_cli import ROOT, free_port

    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", OUT_OF_FILES, str(port), "8"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while b"ready" not in log.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

        async def flood() -> None:
            # Far more than the 30 descriptors left; held for 3 s, never a request.
            conns = await open_many(port, sources(6, 4), 40)
            await asyncio.sleep(3)
            await close_all(conns)

        cpu_before = cpu_seconds(process.pid)
        asyncio.run(flood())
        cpu_flood = cpu_seconds(process.pid) - cpu_before
        # Idle connections timed out, the loop resumed: served again.
        deadline = time.monotonic() + 5
        while health_from(port, "127.0.6.9", 2) != 200:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        text = log.read_text()
    finally:
        process.kill()
        process.wait(timeout=10)
    paused = text.count("cannot accept connections")
    print(f"out of descriptors: {paused} pause lines, {cpu_flood:.2f} s CPU in the 3 s flood")
    assert 1 <= paused <= 8, text[-3000:]
    assert cpu_flood < 1.5  # a loop retrying every EMFILE at once spins a whole core
    assert "Traceback" not in text
