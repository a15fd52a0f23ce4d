"""The outbox towards Redis: bounded, in order, and owing a resync for what it drops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio

from server.services import events_redis_outbox
from server.services.events import Mailbox
from server.services.events_redis import RESYNC, RedisEventHub
from tests.redis_server import RedisServer, Relay


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


async def started(url: str) -> RedisEventHub:
    hub = RedisEventHub(url)
    await hub.start()
    return hub


async def next_event(mailbox: Mailbox, seconds: float = 15.0) -> dict[str, Any]:
    event = await asyncio.wait_for(mailbox.get(), seconds)
    assert event is not None, "the mailbox closed"
    return event


@pytest.mark.gen_test(timeout=30)
async def test_the_outbox_is_bounded_while_redis_stalls(
    private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_redis_outbox, "MAX_OUTBOX", 50)
    here, there = await started(private_redis.url), await started(private_redis.url)
    try:
        remote = there.subscribe(4)
        await there.subscribed(4)
        async with redis.asyncio.Redis.from_url(private_redis.url) as admin:
            await admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")  # PUBLISH waits
            began = time.monotonic()
            for n in range(500):
                here.publish(4, {"type": "image.deleted", "id": str(n)})
            assert time.monotonic() - began < 0.5
            assert here._outbox.waiting <= 50
        # Once Redis moves again, what was queued arrives, then the resync for the rest.
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] != RESYNC:
            seen.append(await next_event(remote))
        assert [e["id"] for e in seen[:-1]] == [str(n) for n in range(50)]
        assert here.published == 50 and here.dropped == 450
    finally:
        await here.close()
        await there.close()


def test_warnings_are_rate_limited_and_count_what_they_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    warn = events_redis_outbox.RateLimitedWarning(60.0, clock=lambda: now[0])
    with caplog.at_level("WARNING"):
        for second in range(0, 130, 10):  # every 10 s for two minutes
            now[0] = second
            warn("events: cannot publish (%s)", "down")
    assert [r.getMessage() for r in caplog.records] == [
        "events: cannot publish (down)",
        "events: cannot publish (down) (and 5 more like it since)",
        "events: cannot publish (down) (and 5 more like it since)",
    ]


@pytest.mark.parametrize("owed_limit", [1_000, 1])
@pytest.mark.gen_test(timeout=60)
async def test_events_dropped_on_the_way_are_owed_a_resync_on_the_other_side(
    private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, owed_limit: int
) -> None:
    monkeypatch.setattr(events_redis_outbox, "MAX_RESYNC_USERS", owed_limit)
    link = Relay(private_redis.port)
    await link.mend()
    here = await started(link.url)  # only this process loses Redis
    there = await started(private_redis.url)
    try:
        boxes = {user: there.subscribe(user) for user in (1, 2, 3)}
        for user in boxes:
            await there.subscribed(user)
        await link.cut()
        for user in (1, 2):  # user 3 has nothing published for them meanwhile
            here.publish(user, {"type": "image.deleted", "id": f"lost-{user}"})

        async def dropped() -> bool:
            return here.dropped == 2

        deadline = time.monotonic() + 10
        while not await dropped():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert not there._stale  # the other process never lost Redis itself
        await link.mend()
        for user in (1, 2):
            assert await next_event(boxes[user]) == {"type": RESYNC}
        there.publish(3, {"type": "marker"})
        third = await next_event(boxes[3])
        if owed_limit == 1:  # too many to name: everyone is told
            assert third == {"type": RESYNC}
            third = await next_event(boxes[3])
        assert third == {"type": "marker"}
        assert all(len(box) == 0 for box in boxes.values())
    finally:
        await here.close()
        await there.close()
        await link.cut()
