"""The hub's rules: coalesced progress, final events never dropped, per-user delivery.

The hub tests run twice: on the local hub, and across two Redis hubs (one listening,
one publishing, as two processes would) on the machine's Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio
import tornado.ioloop

from server.services.events import (
    DEVICE_REVOKED,
    MAX_PENDING_FINAL,
    LocalEventHub,
    Mailbox,
    Throttle,
)
from server.services.events_redis import RedisEventHub
from tests import redis_server

BARRIER_USER = 999_999


class Hubs:
    """Mailboxes on `listen`, events published on `talk`: one hub, or two processes' hubs."""

    def __init__(self, listen: Any, talk: Any) -> None:
        self.listen = listen
        self.talk = talk
        self._barrier: Mailbox | None = None
        self._rounds = 0

    async def subscribe(
        self,
        user_id: int,
        device_id: int | None = None,
        on_revoked: Callable[[], None] | None = None,
    ) -> Mailbox:
        mailbox: Mailbox = self.listen.subscribe(user_id, device_id, on_revoked)
        await self.listen.subscribed(user_id)
        return mailbox

    def publish(self, user_id: int, event: dict[str, Any]) -> None:
        self.talk.publish(user_id, event)

    async def settle(self) -> None:
        """Return once everything published so far has reached the listening mailboxes."""
        if self.listen is self.talk:
            return
        if self._barrier is None:
            self._barrier = await self.subscribe(BARRIER_USER)
        self._rounds += 1
        # One subscriber's messages arrive in the order Redis took them, whatever the
        # channel: once the barrier is through, so is everything published before it.
        self.talk.publish(BARRIER_USER, {"type": "barrier", "round": self._rounds})
        while True:
            event = await asyncio.wait_for(self._barrier.get(), 10)
            if event is not None and event.get("round") == self._rounds:
                return


@pytest.fixture(params=["local", "redis"])
def hubs(request: pytest.FixtureRequest, io_loop: tornado.ioloop.IOLoop) -> Iterator[Hubs]:
    if request.param == "local":
        local = LocalEventHub()
        yield Hubs(local, local)
        return
    redis_server.needs_shared_redis()
    prefix = redis_server.unique_prefix()
    listen = RedisEventHub(redis_server.SHARED_URL, prefix=prefix)
    talk = RedisEventHub(redis_server.SHARED_URL, prefix=prefix)
    io_loop.run_sync(listen.start)
    io_loop.run_sync(talk.start)
    yield Hubs(listen, talk)
    io_loop.run_sync(listen.close)
    io_loop.run_sync(talk.close)

    async def left_behind() -> list[bytes]:
        async with redis.asyncio.Redis.from_url(redis_server.SHARED_URL) as client:
            found: list[bytes] = await client.pubsub_channels(f"{prefix}*")
            return found

    assert io_loop.run_sync(left_behind) == []  # the run's channels went with it


def progress(upload_id: str, received: int, total: int = 100) -> dict[str, object]:
    return {"type": "upload.progress", "upload_id": upload_id, "received": received, "total": total}


async def drain(mailbox: Mailbox) -> list[dict[str, object]]:
    events = []
    while len(mailbox):
        event = await mailbox.get()
        assert event is not None
        events.append(event)
    return events


@pytest.mark.gen_test
async def test_progress_of_one_transfer_coalesces_to_the_newest() -> None:
    mailbox = Mailbox()
    for received in range(0, 101, 10):
        mailbox.put(progress("a", received))
    assert await drain(mailbox) == [progress("a", 100)]


@pytest.mark.gen_test
async def test_coalescing_keeps_order_between_transfers_and_finals() -> None:
    mailbox = Mailbox()
    mailbox.put(progress("a", 10))
    mailbox.put(progress("b", 10))
    mailbox.put({"type": "image.deleted", "id": "x"})
    mailbox.put(progress("a", 50))
    mailbox.put({"type": "upload.done", "upload_id": "a"})
    mailbox.put(progress("b", 70))
    assert [(e["type"], e.get("upload_id"), e.get("received")) for e in await drain(mailbox)] == [
        ("upload.progress", "a", 50),
        ("upload.progress", "b", 70),
        ("image.deleted", None, None),
        ("upload.done", "a", None),
    ]


@pytest.mark.gen_test
async def test_final_events_are_never_coalesced() -> None:
    mailbox = Mailbox()
    for n in range(50):
        mailbox.put({"type": "upload.done", "upload_id": str(n)})
        mailbox.put(progress(str(n), n))
    events = await drain(mailbox)
    assert [e["upload_id"] for e in events if e["type"] == "upload.done"] == [
        str(n) for n in range(50)
    ]


def test_a_mailbox_far_behind_closes_instead_of_growing() -> None:
    mailbox = Mailbox()
    for n in range(MAX_PENDING_FINAL + 10):
        mailbox.put({"type": "image.deleted", "id": str(n)})
    assert mailbox.closed and mailbox.overflowed
    assert len(mailbox) == MAX_PENDING_FINAL


@pytest.mark.gen_test
async def test_get_waits_for_an_event_and_ends_on_close() -> None:
    mailbox = Mailbox()
    waiter = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    mailbox.put({"type": "image.deleted", "id": "1"})
    assert await waiter == {"type": "image.deleted", "id": "1"}
    closing = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)
    mailbox.close()
    assert await closing is None


@pytest.mark.gen_test
async def test_publish_reaches_every_mailbox_of_that_user_only(hubs: Hubs) -> None:
    phone, tablet = await hubs.subscribe(1), await hubs.subscribe(1)
    other = await hubs.subscribe(2)
    hubs.publish(1, {"type": "image.deleted", "id": "x"})
    await hubs.settle()
    assert await drain(phone) == await drain(tablet) == [{"type": "image.deleted", "id": "x"}]
    assert len(other) == 0
    hubs.listen.unsubscribe(1, phone)
    hubs.publish(1, {"type": "image.deleted", "id": "y"})
    await hubs.settle()
    assert len(phone) == 0 and phone.closed
    assert hubs.listen.listeners(1) == 1 and hubs.listen.backlog(1) == [1]


@pytest.mark.gen_test
async def test_progress_published_elsewhere_still_coalesces_here(hubs: Hubs) -> None:
    mailbox = await hubs.subscribe(1)
    for received in range(0, 101, 10):
        hubs.publish(1, progress("a", received))
    hubs.publish(1, {"type": "upload.done", "upload_id": "a"})
    await hubs.settle()
    assert await drain(mailbox) == [progress("a", 100), {"type": "upload.done", "upload_id": "a"}]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("interval", [0.25, 1.0])
def test_throttle_sends_first_last_and_a_few_per_interval(interval: float) -> None:
    clock = Clock()
    throttle = Throttle(interval, clock)
    sent = []
    for done in range(0, 1001):  # 1,000 chunks over 2 seconds
        clock.now = done * 0.002
        if throttle.due(done, 1000):
            sent.append(done)
    assert sent[0] == 0 and sent[-1] == 1000
    assert len(sent) <= 2 / interval + 2
    assert sent == sorted(set(sent))


def test_throttle_never_repeats_the_same_count() -> None:
    throttle = Throttle(0.0, Clock())
    assert throttle.due(10, 10) is True
    assert throttle.due(10, 10) is False


@pytest.mark.gen_test
async def test_a_revoked_device_mailbox_drops_everything_and_closes(hubs: Hubs) -> None:
    calls: list[str] = []
    tablet = await hubs.subscribe(1, 7, on_revoked=lambda: calls.append("tablet"))
    phone = await hubs.subscribe(1, 8, on_revoked=lambda: calls.append("phone"))
    watcher = await hubs.subscribe(1)  # no device: an ordinary listener
    assert hubs.listen.connected_devices() == {7, 8}
    hubs.publish(1, {"type": "image.deleted", "id": "x"})
    hubs.publish(1, progress("a", 10))
    hubs.publish(1, {"type": DEVICE_REVOKED, "device_id": 7})
    hubs.publish(1, {"type": "image.deleted", "id": "y"})
    await hubs.settle()

    assert calls == ["tablet"]
    assert tablet.revoked and tablet.closed and len(tablet) == 0
    assert await tablet.get() is None
    assert hubs.listen.connected_devices() == {8}  # closed mailboxes are not connected
    for other in (phone, watcher):
        assert not other.revoked
        assert [e["type"] for e in await drain(other)] == [
            "image.deleted",
            "upload.progress",
            DEVICE_REVOKED,
            "image.deleted",
        ]
    hubs.publish(1, {"type": DEVICE_REVOKED, "device_id": 7})
    await hubs.settle()
    assert calls == ["tablet"]  # once


@pytest.mark.gen_test
async def test_revoking_reaches_only_the_users_own_mailboxes(hubs: Hubs) -> None:
    theirs = await hubs.subscribe(2, 7)  # another user's device that happens to share nothing
    hubs.publish(1, {"type": DEVICE_REVOKED, "device_id": 7})
    await hubs.settle()
    assert not theirs.closed and len(theirs) == 0
