"""`scripts/bench --only hostile`: the attacks the suite refuses, and what they cost here.

The tests (tests/test_connections.py, tests/test_request_policy.py,
tests/handlers/test_events_limits.py, tests/handlers/test_tus_limits.py,
tests/test_decoding.py) assert generous bounds; this measures the figures themselves,
each against a real `python -m server serve` on its default settings, started afresh:

- idle connections: 1,200 that never finish their headers (600 from 127.0.0.1, 30 from
  each of 20 more 127.0.2.x addresses), then `/health` from another address, and RSS;
- strangers' bodies: 300 connections without a token each sending up to 1 MiB to a 404;
- a ping flood: one authenticated event socket sending text `ping`s, never reading;
- a tus creation flood: one token creating uploads (16 KiB of metadata each) until 429;
- decompression bombs (tests/imaging/bombs.py) beside one real large decode: the peak
  RSS of the server and its decoding workers together, and `/health` meanwhile.

Every flood is bounded in count and time, on loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
import time
from collections.abc import Sequence

from bench_http import API, ROOT, Connection, multipart_body
from bench_servers import TubeiServer, proc_status
from bench_table import Row, Run, Target, expect, median

if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # the tests' helpers, imported below

from tests.handlers.test_events_limits import HANDSHAKE, PING_FRAME
from tests.imaging.bombs import BOMBS, png
from tests.serve_process import close_all, health_from, open_many, sources, still_open
from tests.test_decoding import Sampler, children

MiB = 1024 * 1024


def _rss(server: TubeiServer) -> float:
    return server.status()["VmRSS"] / MiB


def _health_ms(port: int, source: str) -> float:
    """One GET /health from `source`, in ms (its status must be 200)."""
    started = time.perf_counter()
    status = health_from(port, source, 10)
    took = (time.perf_counter() - started) * 1000
    expect(status == 200, f"/health from {source} answered {status}")
    return took


def _latency(name: str, times: Sequence[float], detail: str) -> Row:
    return Row(
        name,
        median(times),
        "ms",
        target=Target("value", "<", 500, "< 500 ms"),
        detail=f"median of {len(times)}, max {max(times):.0f} ms; {detail}",
    )


def _growth(name: str, before: float, after: float, bound: float, detail: str) -> Row:
    return Row(
        name,
        after - before,
        "MiB",
        target=Target("value", "<", bound, f"< {bound:.0f} MiB"),
        detail=f"RSS {before:.0f} -> {after:.0f} MiB; {detail}",
    )


def case_hostile(bench: Run) -> list[Row]:
    rows = _idle_flood(bench)
    rows += _stranger_bodies(bench)
    rows += _ping_flood(bench)
    rows += _tus_flood(bench)
    rows += _bombs(bench)
    return rows


def _idle_flood(bench: Run) -> list[Row]:
    with TubeiServer(bench.workdir, "hostile-idle") as server:
        before = _rss(server)

        async def flood() -> tuple[int, int, list[float]]:
            conns = await open_many(server.port, ["127.0.0.1"], 600)
            conns += await open_many(server.port, sources(2, 20), 30)
            times = [
                await asyncio.to_thread(_health_ms, server.port, f"127.0.9.{n}")
                for n in range(1, 8)
            ]
            held = await still_open(conns)
            await close_all(conns)
            return len(conns), held, times

        opened, held, times = asyncio.run(flood())
        after = _rss(server)
    bench.say(f"hostile: idle flood {opened} opened, {held} held")
    what = f"{opened:,} idle connections, {held} held"
    return [
        _latency("hostile: /health during an idle-connection flood", times, what),
        _growth("hostile: RSS growth, idle-connection flood", before, after, 100, what),
    ]


def _stranger_bodies(bench: Run) -> list[Row]:
    with TubeiServer(bench.workdir, "hostile-bodies") as server:
        before = _rss(server)
        chunk = b"x" * (64 * 1024)

        async def send(writer: asyncio.StreamWriter) -> int:
            head = f"POST {API}/nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: {MiB}\r\n\r\n"
            sent = 0
            try:
                writer.write(head.encode())
                while sent < MiB:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
            except OSError:
                pass  # refused and closed: what should happen
            return sent

        async def flood() -> tuple[int, int]:
            conns = await open_many(server.port, sources(3, 30), 10)
            sent = await asyncio.wait_for(
                asyncio.gather(*(send(w) for _, w in conns), return_exceptions=True), 20
            )
            await close_all(conns)
            return len(conns), sum(s for s in sent if isinstance(s, int))

        try:
            opened, sent = asyncio.run(flood())
        except TimeoutError:
            opened, sent = 300, -1
        after = _rss(server)
        health = _health_ms(server.port, "127.0.9.1")
    what = f"{opened} connections; {sent / MiB:.0f} MiB sent by the client"
    return [
        _growth("hostile: RSS growth, strangers' bodies to a 404", before, after, 120, what),
        Row("hostile: /health after strangers' bodies", health, "ms", detail="one request"),
    ]


def _ping_flood(bench: Run) -> list[Row]:
    with TubeiServer(bench.workdir, "hostile-ping") as server:
        before = _rss(server)
        flood = socket.create_connection(("127.0.0.1", server.port))
        flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        flood.sendall(HANDSHAKE.format(path=f"{API}/events?token={server.token()}").encode())
        flood.settimeout(5)
        expect(flood.recv(4096).startswith(b"HTTP/1.1 101 "), "the event socket did not open")
        batch, sent = PING_FRAME * 10_000, 0
        deadline = time.monotonic() + 5
        flood.settimeout(0.5)
        while time.monotonic() < deadline and sent < 3_000_000:
            try:
                flood.sendall(batch)
            except (TimeoutError, OSError):
                break  # the server stopped reading (or closed): either holds it
            sent += 10_000
        time.sleep(1)
        after = _rss(server)
        health = _health_ms(server.port, "127.0.9.1")
        flood.close()
    what = f"{sent:,} pings sent unread; /health then {health:.0f} ms"
    return [_growth("hostile: RSS growth, text ping flood", before, after, 60, what)]


def _tus_flood(bench: Run) -> list[Row]:
    with TubeiServer(bench.workdir, "hostile-tus") as server:
        metadata = "filename " + base64.b64encode(os.urandom(12_000)).decode()
        headers = {
            **server.auth(),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1000000",
            "Upload-Metadata": metadata,
        }
        connection, accepted, refused = Connection(server.port, timeout=30), 0, 0
        for _ in range(1000):
            status = connection.request("POST", f"{API}/uploads/", headers, keep=False).status
            if status == 429:
                refused += 1
                break
            expect(status == 201, f"a tus creation answered {status}")
            accepted += 1
        catalog = sum(p.stat().st_size for p in server.data.glob("catalog.sqlite3*"))
    expect(refused == 1, f"{accepted} creations and never a 429")
    return [
        Row(
            "hostile: tus creations from one token before 429",
            accepted,
            "",
            target=Target("value", "==", 200, "== 200 (--max-open-uploads)"),
            detail="16 KiB of metadata each",
        ),
        Row(
            "hostile: catalog size after the tus creation flood",
            catalog / MiB,
            "MiB",
            target=Target("value", "<", 16, "< 16 MiB"),
            detail="catalog.sqlite3 and its WAL",
        ),
    ]


def _hwm(pid: int) -> int:
    try:
        return proc_status(pid).get("VmHWM", 0)
    except OSError:
        return 0


def _bombs(bench: Run) -> list[Row]:
    big = png(7000, 5000)  # a real decode of 140 MB, under the budget, beside the bombs
    with TubeiServer(bench.workdir, "hostile-bombs") as server:
        connection = Connection(server.port, timeout=60)

        def upload(name: str, data: bytes) -> str:
            body, content_type = multipart_body(name, [data])
            headers = {**server.auth(), "Content-Type": content_type}
            answer = connection.request("POST", f"{API}/images", headers, body)
            expect(answer.status == 200, f"{name}: {answer.status} {answer.body[:200]!r}")
            item = answer.json()["items"][0]  # type: ignore[index]
            return str(item["sha256"])

        times: list[float] = []
        workers: dict[int, int] = {}
        with Sampler(server.pid) as sampler:
            heavy = upload("big.png", big)
            for name, make in sorted(BOMBS.items()):
                data, ext = make()
                upload(f"{name}.{ext}", data)
                times.append(_health_ms(server.port, "127.0.9.1"))
                workers.update((c, _hwm(c)) for c in children(server.pid))
            deadline = time.monotonic() + 60
            path = f"{API}/images/{heavy}/thumbnail"
            while connection.request("GET", path, server.auth()).status != 200:
                expect(time.monotonic() < deadline, "the large PNG's thumbnail never came")
                times.append(_health_ms(server.port, "127.0.9.2"))
                workers.update((c, _hwm(c)) for c in children(server.pid))
                time.sleep(0.05)
            workers.update((c, _hwm(c)) for c in children(server.pid))
        own = _hwm(server.pid)
        connection.close()
    worker = max(workers.values(), default=0)
    what = f"{len(BOMBS)} bombs and a 7000x5000 PNG"
    return [
        Row(
            "hostile: peak RSS of the server and its workers, decompression bombs",
            sampler.peak / MiB,
            "MiB",
            target=Target("value", "<", 400, "< 400 MiB"),
            detail=f"sampled together; VmHWM server {own / MiB:.0f}, worker {worker / MiB:.0f} MiB",
        ),
        _latency("hostile: /health while bombs are processed", times, what),
    ]
