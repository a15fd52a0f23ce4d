"""Three servers on one library: what one process does, the others see at once.

A, B and C share the data folder, the PostgreSQL catalog and Redis (harness.py); each
test talks to a named process directly, so that what it checks crossed processes, or
to nginx in front of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from typing import Any

import psycopg

from tests.cluster.client import call, events_until, hang_up, listen, listing, upload, uploaded
from tests.cluster.harness import Cluster
from tests.conftest import unique_jpeg


def test_an_upload_through_a_is_listed_through_b_at_once(running: Cluster, user: str) -> None:
    a, b = running.nodes["a"], running.nodes["b"]
    token = running.token(user)
    data = unique_jpeg()
    item = uploaded(a.url, token, "via-a.jpg", data)
    assert [i["id"] for i in listing(b.url, token)] == [item["id"]]
    status, _, original = _get(b.url + f"/images/{item['id']}/original", token)
    assert status == 200 and original == data


def test_a_signed_url_from_a_opens_on_b_and_c_without_a_token(running: Cluster, user: str) -> None:
    """The processes share the key (it is in the catalog): a URL one signs, all accept."""
    from tests.server_cli import request

    a = running.nodes["a"]
    token = running.token(user)
    data = unique_jpeg()
    item = uploaded(a.url, token, "signed.jpg", data)
    for name in ("b", "c"):
        root = running.nodes[name].url.removesuffix("/api/v1")
        status, _, body = request(root + item["signed_urls"]["original"])
        assert (status, body) == (200, data), name
        status, _, _ = request(root + item["signed_urls"]["thumbnail"])
        assert status == 200, name


def test_a_socket_on_c_hears_an_upload_through_a(running: Cluster, user: str) -> None:
    a, c = running.nodes["a"], running.nodes["c"]
    phone, tablet = running.token(user, "phone"), running.token(user, "tablet")

    async def scenario() -> tuple[list[dict[str, Any]], Any]:
        ws = await listen(c.url, tablet)
        try:
            item = await asyncio.to_thread(uploaded, a.url, phone, "p.jpg", unique_jpeg(), "up-1")
            return await events_until(ws, "image.added"), item
        finally:
            await hang_up(ws)

    seen, item = asyncio.run(scenario())
    types = [event["type"] for event in seen]
    assert "upload.progress" in types and "upload.done" in types, types
    assert all(e["upload_id"] == "up-1" for e in seen if e["type"].startswith("upload."))
    assert seen[-1]["image"]["id"] == item["id"]


def test_a_socket_through_nginx_hears_an_upload_through_nginx(running: Cluster, user: str) -> None:
    """The WebSocket upgrade passes nginx; the upload may land on any process."""
    phone, tablet = running.token(user, "phone"), running.token(user, "tablet")

    async def scenario() -> tuple[list[dict[str, Any]], Any]:
        ws = await listen(running.url, tablet)
        try:
            item = await asyncio.to_thread(
                uploaded, running.url, phone, "n.jpg", unique_jpeg(), "up-n"
            )
            return await events_until(ws, "image.added"), item
        finally:
            await hang_up(ws)

    seen, item = asyncio.run(scenario())
    assert seen[-1]["image"]["id"] == item["id"]


def test_revoking_a_device_through_c_closes_its_socket_on_a(running: Cluster, user: str) -> None:
    a, c = running.nodes["a"], running.nodes["c"]
    phone, tablet = running.token(user, "phone"), running.token(user, "tablet")
    devices = call(c.url, "/devices", phone)["items"]
    tablet_id = next(d["id"] for d in devices if not d["current"])

    async def scenario() -> tuple[str | None, int | None]:
        ws = await listen(a.url, tablet)
        try:
            await asyncio.to_thread(call, c.url, f"/devices/{tablet_id}", phone, "DELETE")
            # --ping-interval is 60 s: a close within the wait was not the periodic check.
            message = await asyncio.wait_for(ws.read_message(), 20)
            return message, ws.close_code
        finally:
            await hang_up(ws)

    message, code = asyncio.run(scenario())
    assert message is None and code == 4403
    status, _, _ = _get(a.url + "/images", tablet)
    assert status == 401


def test_the_same_bytes_sent_to_a_and_b_at_once_are_one_blob(running: Cluster, user: str) -> None:
    a, b = running.nodes["a"], running.nodes["b"]
    token = running.token(user)
    data = unique_jpeg((640, 480))
    sha = hashlib.sha256(data).hexdigest()
    start = threading.Barrier(2)
    answers: dict[str, tuple[int, bytes]] = {}

    def send(name: str, base: str) -> None:
        start.wait()
        status, _, body = upload(base, token, f"{name}.jpg", data)
        answers[name] = (status, body)

    threads = [threading.Thread(target=send, args=(n, s.url)) for n, s in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {status for status, _ in answers.values()} == {200}, answers
    ids = {json.loads(body)["items"][0]["id"] for _, body in answers.values()}
    assert len(ids) == 1
    assert [i["sha256"] for i in listing(a.url, token)] == [sha]
    with psycopg.connect(running.postgres.url) as conn:
        row = conn.execute("SELECT count(*) FROM blobs WHERE sha256 = %s", (sha,)).fetchone()
    assert row is not None and row[0] == 1
    stored = [p for p in (running.data / "blobs").rglob("*") if p.is_file() and p.name == sha]
    assert len(stored) == 1 and stored[0].read_bytes() == data


def _get(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    from tests.server_cli import request

    return request(url, headers={"Authorization": f"Bearer {token}"})
