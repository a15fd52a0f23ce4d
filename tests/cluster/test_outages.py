"""The cluster's shared backends go away and come back.

PostgreSQL stopped with `-m immediate` (as a crash would) while clients upload through
nginx: every answer is 200 or 503 `backend_unavailable` with Retry-After, from Tubei,
never nginx's 502; nothing is half-written; once it is back every process serves again
and what was acknowledged is there. Redis killed and started again: sockets stay open
and are told to `resync`; nothing stored is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from tests.cluster.client import (
    Socket,
    auth,
    events_until,
    hang_up,
    listen,
    listing,
    receive,
    upload,
    uploaded,
)
from tests.cluster.harness import Cluster
from tests.conftest import unique_jpeg
from tests.server_cli import request

BIG = 4 * 1024 * 1024  # an upload far past what socket buffers hold


Asked = list[tuple[str, int, dict[str, str], bytes]]


def _at_once(calls: list[tuple[str, Callable[[], tuple[int, dict[str, str], bytes]]]]) -> Asked:
    """Each call in a thread of its own (each waits up to --catalog-timeout)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [(where, pool.submit(call)) for where, call in calls]
        return [(where, *future.result()) for where, future in futures]


def _ask_all(cluster: Cluster, token: str) -> Asked:
    """GET /images through nginx a few times (each kept-alive connection) and on each node."""
    bases = [("nginx", cluster.url)] * 6 + [(n.name, n.url) for n in cluster.nodes.values()]
    return _at_once(
        [(where, partial(request, base + "/images", headers=auth(token))) for where, base in bases]
    )


def _upload_big(cluster: Cluster, token: str) -> Asked:
    """Large uploads, answered before their body is read: through nginx (which streams
    them) and to each node by a client that sends the whole body before it reads."""
    body = os.urandom(BIG)
    bases = [("nginx", cluster.url)] * 3 + [(n.name, n.url) for n in cluster.nodes.values()]
    return _at_once(
        [(where, partial(upload, base, token, "big.jpg", body)) for where, base in bases]
    )


def test_postgresql_restarted_mid_run(running: Cluster, user: str) -> None:
    token = running.token(user)
    before = uploaded(running.url, token, "before.jpg", unique_jpeg())
    sent: dict[str, bytes] = {}
    answers: Asked = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            data = unique_jpeg()
            sent[f"load-{n}.jpg"] = data
            answers.append((f"load-{n}.jpg", *upload(running.url, token, f"load-{n}.jpg", data)))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        time.sleep(0.5)
        running.postgres.stop("immediate")
        down = _ask_all(running, token) + _upload_big(running, token)
        # Down until an upload of the load has met the outage, however slow the machine.
        deadline = time.monotonic() + 30
        while not any(s == 503 for _, s, _, _ in answers) and time.monotonic() < deadline:
            time.sleep(0.1)
        running.postgres.start()
    finally:
        stop.set()
        loader.join(60)

    for where, status, headers, body in down:
        assert status == 503, (where, status, body, running.logs())
        assert json.loads(body)["error"]["code"] == "backend_unavailable"
        assert int(headers["Retry-After"]) > 0
    for name, status, headers, body in answers:
        assert status in (200, 503), (name, status, body, running.logs())
        if status == 503:
            assert json.loads(body)["error"]["code"] == "backend_unavailable"
            assert int(headers["Retry-After"]) > 0
    assert any(status == 503 for _, status, _, _ in answers), "no upload met the outage"

    deadline = time.monotonic() + 30
    while {status for _, status, _, _ in _ask_all(running, token)} != {200}:
        assert time.monotonic() < deadline, running.logs()
        time.sleep(0.2)
    for node in running.nodes.values():
        listed = {i["filename"]: i for i in listing(node.url, token)}
        acknowledged = {name for name, status, _, _ in answers if status == 200}
        assert acknowledged | {"before.jpg"} <= set(listed), node.name
        for name, item in listed.items():
            # A 503'd upload whose COMMIT went through before its answer was lost may be
            # listed; whole, never half.
            if name in sent:
                assert item["sha256"] == hashlib.sha256(sent[name]).hexdigest()
    running.check_store()
    after = uploaded(running.url, token, "after.jpg", unique_jpeg())
    assert after["id"] != before["id"]
    for node in running.nodes.values():
        assert "Traceback" not in node.log_text(), node.log_text()[-3000:]


async def heard(ws: Socket, image_id: str, seconds: float) -> bool:
    """Whether `image.added` of this image comes within `seconds` of the last event."""
    while True:
        try:
            seen = await events_until(ws, "image.added", seconds)
        except TimeoutError:
            return False
        if seen[-1]["image"]["id"] == image_id:
            return True


def test_redis_restarted_sockets_resync_and_nothing_is_lost(running: Cluster, user: str) -> None:
    a, b = running.nodes["a"], running.nodes["b"]
    phone, tablet = running.token(user, "phone"), running.token(user, "tablet")

    async def scenario() -> list[Any]:
        a_ws, b_ws = await listen(a.url, tablet), await listen(b.url, phone)
        try:
            running.redis.kill()
            await asyncio.sleep(0.5)
            during = [
                await asyncio.to_thread(uploaded, b.url, phone, f"d{n}.jpg", unique_jpeg())
                for n in range(3)
            ]
            running.redis.start()
            assert json.loads(await receive(a_ws, 30))["type"] == "resync"
            # Events cross processes again (a second resync may come first, and the
            # events of earlier uploads may arrive after them: each upload is awaited by
            # its own id, so a late one is not mistaken for it, nor it for a late one).
            deadline = time.monotonic() + 60
            while True:
                assert time.monotonic() < deadline, "no image.added crossed from b to a"
                item = await asyncio.to_thread(uploaded, b.url, phone, "x.jpg", unique_jpeg())
                if await heard(a_ws, item["id"], 5):
                    return [*during, item]
        finally:
            await hang_up(a_ws)
            await hang_up(b_ws)

    stored = asyncio.run(scenario())
    for node in running.nodes.values():
        assert {i["id"] for i in listing(node.url, token=phone)} >= {i["id"] for i in stored}
