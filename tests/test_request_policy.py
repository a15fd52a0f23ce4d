"""Each request under the server's policy, against a real `serve` on loopback: bodies
before authentication, the idle-body timeout, 431, forwarded addresses and the pairing
throttle that counts by them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

from server.connections import Proxies
from server.request_policy import forwarded_address
from tests.conftest import multipart
from tests.serve_process import (
    API,
    Served,
    close_all,
    fetch,
    noise_jpeg,
    open_many,
    serving,
    sources,
    still_open,
)


def test_forwarded_address_takes_the_rightmost_address_not_a_proxy() -> None:
    proxies = Proxies(["10.0.0.0/8", "::1"])
    header = "X-Forwarded-For"
    assert forwarded_address(header, "203.0.113.9", proxies) == "203.0.113.9"
    assert forwarded_address(header, "1.2.3.4, 203.0.113.9, 10.0.0.2", proxies) == "203.0.113.9"
    assert forwarded_address(header, "10.0.0.1, 10.0.0.2", proxies) is None
    assert forwarded_address(header, "not an address", proxies) is None
    assert forwarded_address("X-Real-Ip", "2001:db8::1", proxies) == "2001:db8::1"
    assert forwarded_address("X-Real-Ip", "1.2.3.4, 5.6.7.8", proxies) is None
    assert "10.1.2.3" in proxies and "::ffff:10.1.2.3" in proxies and "11.0.0.1" not in proxies


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
            await close_all(conns)
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
            await close_all([(reader, writer)])
            alive = await still_open(conns, wait=0.2)
            await close_all(conns)
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
            await close_all([(reader, writer)])
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
            await close_all([(reader, writer)])
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
            await close_all([(reader, writer)])
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
        await close_all([(reader, writer)])
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
