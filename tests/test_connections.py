"""What a connection may cost, against a real `serve` process on loopback.

Floods are bounded in count and time; the limits are lowered by settings so that
each test takes seconds. Memory is judged as RSS growth against a generous bound
(the figures measured here are printed, for the record).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from server.connections import EverySecond
from tests.conftest import multipart
from tests.serve_process import API, Served, fetch, serving

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


def close_all(streams: Streams) -> None:
    for _, writer in streams:
        writer.close()


def noise_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG of random pixels: as large as a photo of its size gets."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def sources(third: int, count: int) -> list[str]:
    return [f"127.0.{third}.{n}" for n in range(1, count + 1)]


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
            close_all(one + many)
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


# bodies from strangers ------------------------------------------------------------------


def test_strangers_bodies_are_refused_early_and_never_buffered(tmp_path: Path) -> None:
    flags = ["--max-connections-per-address", "20", "--body-timeout", "5"]
    with serving(tmp_path, *flags) as served:
        rss_before = served.rss_mib()

        async def flood() -> tuple[int, list[bytes]]:
            # The finding: 600 connections each declaring 1 MiB - 1 to a 404 path.
            conns = await open_many(served.port, sources(3, 30), 20)
            head = (
                "POST /api/v1/nowhere HTTP/1.1\r\nHost: t\r\n"
                f"Content-Length: {1024 * 1024 - 1}\r\n\r\n"
            ).encode()
            for _, writer in conns:
                writer.write(head + b"x" * 60_000)
            await asyncio.gather(*(w.drain() for _, w in conns), return_exceptions=True)
            firsts = await asyncio.gather(
                *(asyncio.wait_for(r.readline(), 10) for r, _ in conns[:50]),
                return_exceptions=True,
            )
            close_all(conns)
            return len(conns), [f for f in firsts if isinstance(f, bytes)]

        opened, firsts = asyncio.run(flood())
        rss_after = served.rss_mib()
        # A body declared too large for a stranger is refused before a byte is read...
        status = fetch(
            served.url + f"{API}/images",
            "POST",
            b"x" * (200 * 1024),
            **{"Content-Type": "multipart/form-data; boundary=b"},
        )
        # ...while a caller with a token may send what an API call needs.
        token = served.token()
        hashes = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(5000)]
        body = json.dumps({"sha256": hashes}).encode()
        assert len(body) > 64 * 1024
        checked = fetch(
            served.url + f"{API}/images/check",
            "POST",
            body,
            Authorization=f"Bearer {token}",
            **{"Content-Type": "application/json"},
        )
        health = served.health()
    print(f"stranger bodies: {opened} connections, RSS {rss_before:.0f} -> {rss_after:.0f} MiB")
    assert opened == 600
    assert firsts and all(line.startswith(b"HTTP/1.1 404 ") for line in firsts), firsts[:3]
    assert rss_after - rss_before < 120  # it was ~740 MiB when bodies were buffered
    assert status == 401
    assert checked == 200
    assert health == 200


def test_a_slow_body_flood_to_a_public_route_is_held_to_its_small_limit(tmp_path: Path) -> None:
    """Strangers trickling bodies to pairing (which reads its body): each may hold at
    most --max-unauthenticated-body, for as long as it keeps sending."""
    with serving(tmp_path, "--max-connections-per-address", "20") as served:
        rss_before = served.rss_mib()

        async def flood() -> tuple[int, int, list[bytes]]:
            conns = await open_many(served.port, sources(7, 15), 20)
            head = (
                f"POST {API}/auth/pair HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                "\r\nContent-Length: 65000\r\n\r\n"
            ).encode()
            for _, writer in conns:
                writer.write(head + b" " * 20_000)
            for _ in range(6):  # 1 KB a connection every half second: never silent
                await asyncio.sleep(0.5)
                for _, writer in conns:
                    writer.write(b" " * 1000)
            health = await asyncio.to_thread(served.health, "127.0.7.99", 5)
            # Past the limit: the body is refused at once, before a byte of it.
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(head.replace(b"65000", b"70000"))
            refused = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            alive = await still_open(conns, wait=0.2)
            close_all(conns)
            return health, alive, [refused]

        health, alive, refused = asyncio.run(flood())
        rss_after = served.rss_mib()
    print(f"slow bodies: {alive} trickling, RSS {rss_before:.0f} -> {rss_after:.0f} MiB")
    assert alive == 300  # still sending, so still served
    assert health == 200
    assert refused[0].startswith(b"HTTP/1.1 413 ")
    assert rss_after - rss_before < 80  # 300 x 64 KiB at most, and the buffers around it


def test_a_body_that_stops_coming_is_cut_after_the_body_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, "--body-timeout", "1") as served:
        token = served.token()

        async def stall() -> float:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(
                (
                    f"POST {API}/images HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                    "Content-Type: multipart/form-data; boundary=b\r\n"
                    "Content-Length: 100000\r\n\r\n--b\r\n"
                ).encode()
            )
            started = time.monotonic()
            await asyncio.wait_for(reader.read(), 10)  # the server closes it
            writer.close()
            return time.monotonic() - started

        waited = asyncio.run(stall())
    assert 0.9 <= waited < 5


def test_a_slow_phone_finishes_however_long_its_upload_takes(tmp_path: Path) -> None:
    """12 KB/s, never silent for a whole body timeout: the upload takes many timeouts."""
    photo = noise_jpeg((360, 240))
    assert 90_000 < len(photo) < 160_000
    body, content_type = multipart([("file", "slow.jpg", photo)])
    with serving(tmp_path, "--body-timeout", "1.5", "--header-timeout", "2") as served:
        token = served.token()

        async def trickle() -> tuple[bytes, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(
                (
                    f"POST {API}/images HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
            )
            started = time.monotonic()
            piece = 1200  # 12 KB/s: 1,200 bytes every 0.1 s
            for start in range(0, len(body), piece):
                writer.write(body[start : start + piece])
                await writer.drain()
                await asyncio.sleep(0.1)
            answer = await asyncio.wait_for(reader.read(65536), 15)
            writer.close()
            return answer, time.monotonic() - started

        answer, took = asyncio.run(trickle())
    print(f"slow phone: {len(body)} bytes in {took:.1f}s")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert took > 4 * 1.5  # far past what a 1.5 s total would have allowed
    assert hashlib.sha256(photo).hexdigest().encode() in answer


# headers ------------------------------------------------------------------------------


def test_oversized_headers_are_answered_431_and_serving_goes_on(tmp_path: Path) -> None:
    with serving(tmp_path) as served:

        async def exchange(head: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(head)
            answer = await asyncio.wait_for(reader.read(65536), 10)
            writer.close()
            return answer

        big = b"x" * 20_000
        answer = asyncio.run(
            exchange(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nX-Big: " + big + b"\r\n\r\n")
        )
        query = asyncio.run(
            exchange(b"GET /api/v1/health?" + big + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        )
        health = served.health()
        log = served.log_text()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "headers_too_large"
    assert query.startswith(b"HTTP/1.1 431 ")
    assert big[:100].decode() not in log  # the refused URI is not logged whole
    assert health == 200


# forwarded addresses --------------------------------------------------------------------


def guess_from(served: Served, source: str, headers: dict[str, str] | None = None) -> int:
    """One wrong pairing guess sent from `source`; its status."""

    async def send() -> int:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", served.port, local_addr=(source, 0)
        )
        body = b'{"code": "000000", "device": "guess"}'
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            (
                f"POST {API}/auth/pair HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return int(line.split()[1])

    return asyncio.run(send())


def test_pairing_guesses_from_many_addresses_hit_the_cap_for_everyone(tmp_path: Path) -> None:
    with serving(tmp_path, "--max-pairing-attempts-total", "60") as served:
        statuses = [guess_from(served, source) for source in sources(4, 50) for _ in range(2)]
        newcomer = guess_from(served, "127.0.5.1")
        log = served.log_text()
    # 50 addresses, 2 guesses each: each under its own limit, together past the cap.
    assert statuses.count(401) == 60
    assert statuses.count(429) == 40
    assert newcomer == 429
    assert "Traceback" not in log


def test_forwarded_headers_count_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    flags = ["--trust-forwarded", "--trusted-proxies", "127.0.0.9", "--max-pairing-attempts-total"]
    with serving(tmp_path, *flags, "1000") as served:
        # Not from the proxy: a random X-Forwarded-For per guess buys nothing.
        spoofed = [
            guess_from(served, "127.0.0.1", {"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(21)
        ]
        # From the proxy, with its header: each client is itself...
        proxied = [
            guess_from(served, "127.0.0.9", {"X-Forwarded-For": f"198.51.100.{n}"})
            for n in range(21)
        ]
        # ...but only its configured header counts.
        other_header = [
            guess_from(served, "127.0.0.9", {"X-Real-Ip": f"192.0.2.{n}"}) for n in range(21)
        ]
    assert spoofed[:20] == [401] * 20 and spoofed[20] == 429
    assert proxied == [401] * 21
    assert other_header[:20] == [401] * 20 and other_header[20] == 429


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
    from tests.test_main import ROOT, free_port

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
            close_all(conns)

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
