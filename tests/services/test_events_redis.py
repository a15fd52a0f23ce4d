"""The Redis hub's own rules: subscriptions follow sockets, outages end in `resync`.

The rules every hub keeps (per-user delivery, coalescing, revocation) are in
test_events.py, run on this hub too. These need a real Redis: the machine's, on
channels of the test's own, or a private redis-server where a test stops it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio

from server.services import events_redis
from server.services.events import Mailbox
from server.services.events_redis import RESYNC, EventsUnavailable, RedisEventHub
from tests import redis_server
from tests.redis_server import SHARED_URL, RedisServer, Relay


@pytest.fixture
def prefix() -> str:
    redis_server.needs_shared_redis()
    return redis_server.unique_prefix()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


async def started(url: str, prefix: str | None = None) -> RedisEventHub:
    hub = RedisEventHub(url, prefix=prefix)
    await hub.start()
    return hub


async def channels(url: str, pattern: str) -> set[bytes]:
    async with redis.asyncio.Redis.from_url(url) as client:
        found: list[bytes] = await client.pubsub_channels(pattern)
        return set(found)


async def next_event(mailbox: Mailbox, seconds: float = 10.0) -> dict[str, Any]:
    event = await asyncio.wait_for(mailbox.get(), seconds)
    assert event is not None, "the mailbox closed"
    return event


async def until(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.gen_test(timeout=30)
async def test_subscriptions_follow_the_users_with_a_socket_here(prefix: str) -> None:
    hub = await started(SHARED_URL, prefix)
    try:
        mine = f"{prefix}user:*"
        assert await channels(SHARED_URL, mine) == set()
        phone, tablet = hub.subscribe(1), hub.subscribe(1)
        other = hub.subscribe(2)
        await hub.subscribed(1)
        await hub.subscribed(2)
        # subscribed() means Redis has it: no waiting after it.
        assert await channels(SHARED_URL, mine) == {
            f"{prefix}user:1".encode(),
            f"{prefix}user:2".encode(),
        }
        hub.unsubscribe(1, phone)
        hub.unsubscribe(2, other)

        async def only_user_1() -> bool:
            return await channels(SHARED_URL, mine) == {f"{prefix}user:1".encode()}

        await until(only_user_1)
        hub.unsubscribe(1, tablet)

        async def none() -> bool:
            return await channels(SHARED_URL, mine) == set()

        await until(none)
    finally:
        await hub.close()
    assert await channels(SHARED_URL, f"{prefix}*") == set()  # nothing left behind


@pytest.mark.gen_test(timeout=30)
async def test_a_process_hears_its_own_events_once_and_others_too(prefix: str) -> None:
    here, there = await started(SHARED_URL, prefix), await started(SHARED_URL, prefix)
    try:
        local, remote = here.subscribe(5), there.subscribe(5)
        await here.subscribed(5)
        await there.subscribed(5)
        here.publish(5, {"type": "image.deleted", "id": "a"})
        there.publish(5, {"type": "image.deleted", "id": "b"})
        seen_here = [await next_event(local), await next_event(local)]
        seen_there = [await next_event(remote), await next_event(remote)]
        # Each process's own event arrives first (directly), then the other's via Redis.
        assert [e["id"] for e in seen_here] == ["a", "b"]
        assert [e["id"] for e in seen_there] == ["b", "a"]
        assert await here.flush() and await there.flush()
        # A marker after both: nothing else (no echo of one's own event) came before it.
        there.publish(5, {"type": "marker"})
        assert (await next_event(local))["type"] == "marker"
        assert here.published == 1 and there.published == 2
    finally:
        await here.close()
        await there.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_revoke_from_a_short_lived_process_is_sent_before_it_exits(prefix: str) -> None:
    server = await started(SHARED_URL, prefix)
    try:
        closed: list[str] = []
        phone = server.subscribe(3, 41, on_revoked=lambda: closed.append("phone"))
        await server.subscribed(3)
        command = await started(SHARED_URL, prefix)  # the shell's `revoke`
        command.publish(3, {"type": "device.revoked", "device_id": 41})
        await command.close()  # sends what is queued, then lets go

        async def revoked() -> bool:
            return phone.revoked

        await until(revoked, 5)
        assert closed == ["phone"]
    finally:
        await server.close()


@pytest.mark.gen_test(timeout=30)
async def test_malformed_messages_on_a_channel_are_ignored(prefix: str) -> None:
    hub = await started(SHARED_URL, prefix)
    try:
        mailbox = hub.subscribe(9)
        await hub.subscribed(9)
        async with redis.asyncio.Redis.from_url(SHARED_URL) as client:
            channel = f"{prefix}user:9"
            for junk in (
                b"not json",
                b"[1, 2]",
                b'{"origin": "x"}',
                b'{"origin": "x", "event": 3}',
            ):
                await client.publish(channel, junk)
            good = {"origin": "elsewhere", "event": {"type": "image.deleted", "id": "z"}}
            await client.publish(channel, json.dumps(good))
        assert await next_event(mailbox) == {"type": "image.deleted", "id": "z"}
        assert len(mailbox) == 0
    finally:
        await hub.close()


def test_the_database_number_keeps_servers_apart() -> None:
    # Pub/sub ignores database numbers, so channel names carry them.
    assert RedisEventHub("redis://127.0.0.1:6379/0").prefix == "tubei:0:"
    assert RedisEventHub("redis://127.0.0.1:6379/3").prefix == "tubei:3:"
    assert RedisEventHub("redis://127.0.0.1:6379").prefix == "tubei:0:"
    assert RedisEventHub("unix:///run/redis.sock?db=2").prefix == "tubei:2:"


@pytest.mark.gen_test(timeout=30)
async def test_servers_on_two_databases_of_one_redis_do_not_hear_each_other(
    private_redis: RedisServer,
) -> None:
    url = private_redis.url
    zero = await started(url)
    one = await started(url.replace("/0", "/1"))
    listener = await started(url.replace("/0", "/1"))
    try:
        deaf, hearing = zero.subscribe(1), listener.subscribe(1)
        await zero.subscribed(1)
        await listener.subscribed(1)
        zero.publish(2, {"type": "noise"})  # another user, and
        one.publish(1, {"type": "image.deleted", "id": "one"})
        assert await next_event(hearing) == {"type": "image.deleted", "id": "one"}
        zero.publish(1, {"type": "image.deleted", "id": "zero"})
        one.publish(1, {"type": "marker"})
        assert await next_event(hearing) == {"type": "marker"}
        assert [await next_event(deaf)] == [{"type": "image.deleted", "id": "zero"}]  # its own
        assert len(deaf) == 0
    finally:
        for hub in (zero, one, listener):
            await hub.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_unix_socket_url_works(private_redis: RedisServer) -> None:
    here, there = await started(private_redis.unix_url), await started(private_redis.url)
    try:
        mailbox = here.subscribe(1)
        await here.subscribed(1)
        there.publish(1, {"type": "image.deleted", "id": "u"})
        assert await next_event(mailbox) == {"type": "image.deleted", "id": "u"}
    finally:
        await here.close()
        await there.close()


@pytest.mark.gen_test(timeout=30)
async def test_rediss_verifies_the_certificate() -> None:
    server = RedisServer(tls=True).start()
    try:
        here, there = await started(server.tls_url), await started(server.url)
        try:
            mailbox = here.subscribe(1)
            await here.subscribed(1)
            there.publish(1, {"type": "image.deleted", "id": "tls"})
            assert await next_event(mailbox) == {"type": "image.deleted", "id": "tls"}
        finally:
            await here.close()
            await there.close()
        untrusted = RedisEventHub(server.tls_url.split("?")[0])  # without the private CA
        with pytest.raises(EventsUnavailable, match="certificate"):
            await untrusted.start()
        await untrusted.close()
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=30)
async def test_unreachable_at_start_is_a_clear_error_and_publish_still_works() -> None:
    url = f"redis://:hunter2@127.0.0.1:{redis_server.free_port()}/0"  # nothing listens there
    hub = RedisEventHub(url)
    began = time.monotonic()
    with pytest.raises(EventsUnavailable) as raised:
        await hub.start()
    message = str(raised.value)
    assert message.startswith("cannot reach Redis at redis://:***@127.0.0.1:")
    assert "hunter2" not in message and "\n" not in message
    assert time.monotonic() - began < events_redis.START_TIMEOUT + 1
    mailbox = hub.subscribe(1)
    await hub.subscribed(1)  # returns at once: there is nothing to wait for
    began = time.monotonic()
    for n in range(100):
        hub.publish(1, {"type": "image.deleted", "id": str(n)})
    assert time.monotonic() - began < 0.5  # never waits for Redis
    assert len(mailbox) == 100  # this process's sockets hear it all
    began = time.monotonic()
    await hub.close()
    assert time.monotonic() - began < events_redis.FLUSH_TIMEOUT + 1
    assert hub.dropped == 100 and hub.published == 0


@pytest.mark.gen_test(timeout=60)
async def test_redis_restarted_sockets_stay_and_resync(private_redis: RedisServer) -> None:
    here, there = await started(private_redis.url), await started(private_redis.url)
    try:
        local = here.subscribe(1, 11)
        remote = there.subscribe(1, 12)
        await here.subscribed(1)
        await there.subscribed(1)
        here.publish(1, {"type": "image.deleted", "id": "before"})
        assert (await next_event(remote))["id"] == "before"
        assert (await next_event(local))["id"] == "before"

        private_redis.kill()

        async def lost() -> bool:
            return not here._up and not there._up

        await until(lost)
        for n in range(3):  # an upload during the outage: published, never blocked
            here.publish(1, {"type": "image.deleted", "id": f"during-{n}"})
        assert [(await next_event(local))["id"] for _ in range(3)] == [
            "during-0",
            "during-1",
            "during-2",
        ]
        assert not local.closed and not remote.closed
        late = there.subscribe(2)  # a socket that opens while Redis is away
        began = time.monotonic()
        await there.subscribed(2)
        assert time.monotonic() - began < 0.5  # its hello is not held up
        await asyncio.sleep(0.5)

        private_redis.start()
        # The other process's socket missed "during-*": it is told to reload.
        assert (await next_event(remote, 15))["type"] == RESYNC
        assert (await next_event(local, 15))["type"] == RESYNC
        assert (await next_event(late, 15))["type"] == RESYNC

        async def both_up() -> bool:
            return here._up and there._up and not here._outbox.down

        await until(both_up, 15)
        here.publish(1, {"type": "image.deleted", "id": "after"})
        seen = []
        while not seen or seen[-1].get("id") != "after":
            seen.append(await next_event(remote))
        assert {e["type"] for e in seen[:-1]} <= {RESYNC}  # a second resync at most
        assert here.dropped == 3
        assert not local.closed and not remote.closed
    finally:
        await here.close()
        await there.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_subscription_slower_than_the_wait_is_owed_a_resync(
    private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_redis, "SUBSCRIBE_WAIT", 0.05)
    slow = Relay(private_redis.port, delay=0.3)
    await slow.mend()
    hub = await started(slow.url)
    try:
        mailbox = hub.subscribe(1)
        began = time.monotonic()
        await hub.subscribed(1)  # gives up waiting: the socket's hello is not held long
        assert time.monotonic() - began < 0.25
        # Whatever was published before the channel took is unknown: reload, once it has.
        assert await next_event(mailbox) == {"type": RESYNC}
        assert len(mailbox) == 0
    finally:
        await hub.close()
        await slow.cut()
