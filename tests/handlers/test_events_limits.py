"""The event socket's budgets, against a real `serve`: sockets per token and on the
server, text pings from a client that never reads, tokens spelt other than `?token=`."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import tornado.websocket

from tests.serve_process import API, Served, serving

HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
# A masked text frame "ping" (a zero mask leaves the payload as it is).
PING_FRAME = b"\x81\x84\x00\x00\x00\x00ping"


async def connect(served: Served, token: str) -> tornado.websocket.WebSocketClientConnection:
    return await tornado.websocket.websocket_connect(
        f"ws://127.0.0.1:{served.port}{API}/events?token={token}"
    )


async def outcome(conn: tornado.websocket.WebSocketClientConnection) -> int | None:
    """The close code once the server closes the socket; None if it stays open."""
    try:
        while True:
            message = await asyncio.wait_for(conn.read_message(), 1.5)
            if message is None:
                return conn.close_code
    except TimeoutError:
        return None


def test_sockets_per_token_and_on_the_server_are_capped(tmp_path: Path) -> None:
    flags = ["--max-sockets-per-device", "3", "--max-sockets", "5"]
    with serving(tmp_path, *flags) as served:
        mum, dad = served.token("mum"), served.token("dad")

        async def run() -> tuple[list[int | None], list[int | None]]:
            mums = [await connect(served, mum) for _ in range(5)]
            mum_codes = await asyncio.gather(*(outcome(c) for c in mums))
            dads = [await connect(served, dad) for _ in range(3)]
            dad_codes = await asyncio.gather(*(outcome(c) for c in dads))
            for conn in mums + dads:
                conn.close()
            await asyncio.sleep(0.3)  # let the closing handshakes end inside this loop
            return mum_codes, dad_codes

        mum_codes, dad_codes = asyncio.run(run())
    # The newest win on one token: the two oldest were closed as replaced.
    assert mum_codes == [4409, 4409, None, None, None]
    # The server holds 5: the dad's third is refused.
    assert dad_codes == [None, None, 4429]


def test_a_text_ping_flood_from_a_client_that_never_reads_stays_small(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        token = served.token()
        rss_before = served.rss_mib()
        flood = socket.create_connection(("127.0.0.1", served.port))
        flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        flood.sendall(HANDSHAKE.format(path=f"{API}/events?token={token}").encode())
        flood.settimeout(5)
        assert flood.recv(4096).startswith(b"HTTP/1.1 101 ")
        # From here on the client never reads a byte.
        batch = PING_FRAME * 10_000
        sent = 0
        deadline = time.monotonic() + 8
        flood.settimeout(0.5)
        while time.monotonic() < deadline and sent < 1_500_000:
            try:
                flood.sendall(batch)
            except TimeoutError:
                break  # the server stopped reading: that holds it too
            sent += 10_000
        time.sleep(1)
        rss_after = served.rss_mib()
        health = served.health()
        flood.close()
    print(f"ping flood: {sent} pings sent, RSS {rss_before:.0f} -> {rss_after:.0f} MiB")
    assert sent >= 100_000
    assert rss_after - rss_before < 60  # it was ~1 GiB per million pings
    assert health == 200


def test_a_token_spelt_otherwise_in_the_url_authenticates_nothing_and_is_not_logged(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as served:
        token = served.token()

        async def run() -> tuple[int | None, str, int | None]:
            odd = await tornado.websocket.websocket_connect(
                f"ws://127.0.0.1:{served.port}{API}/events?%74oken={token}"
            )
            refused = await outcome(odd)
            odd.close()
            right = await connect(served, token)
            hello = await right.read_message()
            right.close()
            twice = await tornado.websocket.websocket_connect(
                f"ws://127.0.0.1:{served.port}{API}/events?token={token}&token={token}"
            )
            doubled = await outcome(twice)
            twice.close()
            await asyncio.sleep(0.3)  # let the closing handshakes end inside this loop
            return refused, str(hello), doubled

        refused, hello, twice = asyncio.run(run())
        log = served.log_text()
    assert refused == 4401
    assert json.loads(hello)["type"] == "hello"
    assert twice == 4401
    assert token not in log
    assert "%74oken=***" in log
