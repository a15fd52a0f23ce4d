"""The event hub for several processes: each user's events fan out through Redis pub/sub.

Every process keeps its own sockets' mailboxes (a `LocalEventHub`: progress coalesced
per transfer, final events never dropped) and hands its own events to them directly,
so a socket hears what its own process does even while Redis is away. Through Redis
the same events reach the other processes: a user's go on the channel
`<prefix>user:<id>`, and a process is subscribed to exactly the channels of the users
who have a socket on it. Redis does the filtering, so a process hears nothing about
people it does not serve; one shared channel would carry everyone's progress events to
every process. `device.revoked` is an ordinary event, so revocation crosses processes
with the rest, and a revoke run from the shell reaches the servers' sockets at once.

Publishing never waits for Redis (`events_redis_outbox.py`): while Redis cannot be
reached, events for other processes are dropped and their users are owed `resync`;
this process's sockets get one too once its subscription is back: reload what you
show, something may have been missed. Nothing stored depends on Redis, only the live
view.

A socket's `hello` promises that nothing is missed from then on, so `subscribed()`
returns only once Redis has confirmed the user's channel (or, failing that within a
moment, the user is owed a `resync`).

Redis's pub/sub channels ignore the database number (a PUBLISH on db 1 reaches a
subscriber on db 0), so the number is part of every channel name: servers on `/0` and
`/1` of one Redis stay apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ..config_values import redact_url
from .events import Event, LocalEventHub, Mailbox
from .events_redis_outbox import RETRY_DELAYS, LinkErrors, RateLimitedWarning, RedisOutbox

log = logging.getLogger(__name__)

RESYNC = "resync"
CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 5.0
START_TIMEOUT = 5.0
SUBSCRIBE_WAIT = 2.0  # how long a new socket waits for its channel before its hello
HEARTBEAT = 5.0  # a silent subscription is pinged; three silences in a row: it is gone
SILENCES = 3
FLUSH_TIMEOUT = 3.0


class EventsUnavailable(Exception):
    """Redis could not be reached at start-up; the message says where and why."""


def _resync() -> Event:
    return {"type": RESYNC}


class RedisEventHub:
    """This process's mailboxes, and every other process's, joined through Redis."""

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        # Every failure is handled here (reconnect, resync), so redis-py retries nothing.
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        db = self._redis.connection_pool.connection_kwargs.get("db", 0)
        self.prefix = prefix if prefix is not None else f"tubei:{db}:"
        self._user_prefix = f"{self.prefix}user:".encode()
        self._everyone = f"{self.prefix}everyone".encode()
        self._origin = secrets.token_hex(8)
        self._local = LocalEventHub()
        self._users: set[int] = set()  # users with a mailbox here
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._first_try: asyncio.Future[BaseException | None] | None = None
        # the subscription
        self._up = False  # subscribed, and Redis has confirmed the everyone channel
        self._live: set[bytes] = set()  # channels as Redis has them once it reads what went
        self._unconfirmed: Counter[bytes] = Counter()  # SUBSCRIBEs sent, not yet confirmed
        self._stale: set[int] = set()  # users whose sockets here may have missed events
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._dirty = asyncio.Event()  # the users here changed: subscriptions to follow
        self._outbox = RedisOutbox(
            self._redis, self.shown_url, self._channel, self._everyone, self._encode(_resync())
        )
        self._warn_message = RateLimitedWarning()

    # lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe and start sending; EventsUnavailable if Redis does not answer."""
        loop = asyncio.get_running_loop()
        self._first_try = loop.create_future()
        self._tasks = [
            loop.create_task(self._listen_forever()),
            loop.create_task(self._outbox.run()),
        ]
        try:
            error = await asyncio.wait_for(asyncio.shield(self._first_try), START_TIMEOUT)
        except TimeoutError:
            error = TimeoutError(f"no answer in {START_TIMEOUT:.0f} s")
        if error is not None:
            raise EventsUnavailable(f"cannot reach Redis at {self.shown_url}: {error}")
        log.info("events: through Redis at %s", self.shown_url)

    async def flush(self, seconds: float = FLUSH_TIMEOUT) -> bool:
        """Wait until every event published so far has gone to Redis (or was dropped)."""
        return await self._outbox.flush(seconds)

    async def close(self) -> None:
        if self._closed:
            return
        if self._tasks and not await self.flush():
            log.warning("events: %d events not sent to Redis before closing", self._outbox.waiting)
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._release_waiters()
        await self._redis.aclose()

    # the EventHub calls ---------------------------------------------------------------

    def subscribe(
        self,
        user_id: int,
        device_id: int | None = None,
        on_revoked: Callable[[], None] | None = None,
    ) -> Mailbox:
        mailbox = self._local.subscribe(user_id, device_id, on_revoked)
        if user_id not in self._users:
            self._users.add(user_id)
            self._dirty.set()
        if not self._up:
            self._stale.add(user_id)
        return mailbox

    async def subscribed(self, user_id: int) -> None:
        if not self._up or user_id not in self._users or self._ready(user_id):
            return  # when Redis is away the user is owed a resync already
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(user_id, [])
        waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, SUBSCRIBE_WAIT)
        except TimeoutError:
            if user_id in self._users:
                self._stale.add(user_id)
        finally:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._waiters.get(user_id) is waiters:
                del self._waiters[user_id]

    def unsubscribe(self, user_id: int, mailbox: Mailbox) -> None:
        self._local.unsubscribe(user_id, mailbox)
        if user_id in self._users and not self._local.listeners(user_id):
            self._users.discard(user_id)
            self._stale.discard(user_id)
            self._release_waiters(user_id)
            self._dirty.set()

    def publish(self, user_id: int, event: Event) -> None:
        self._local.publish(user_id, event)
        if self._closed:
            return
        try:
            payload = self._encode(event)
        except (TypeError, ValueError):
            log.exception("events: a %r event is not JSON; not sent to Redis", event.get("type"))
            return
        self._outbox.offer(user_id, payload)

    @property
    def published(self) -> int:
        return self._outbox.published

    @property
    def dropped(self) -> int:
        return self._outbox.dropped

    @property
    def mailbox_hub(self) -> LocalEventHub:
        """This process's mailboxes, with their counts (for the metrics)."""
        return self._local

    def connected_devices(self) -> set[int]:
        return self._local.connected_devices()

    def listeners(self, user_id: int) -> int:
        return self._local.listeners(user_id)

    def backlog(self, user_id: int) -> list[int]:
        return self._local.backlog(user_id)

    # the subscription ----------------------------------------------------------------

    def _channel(self, user_id: int) -> bytes:
        return self._user_prefix + str(user_id).encode()

    def _user_of(self, channel: bytes) -> int | None:
        if channel.startswith(self._user_prefix):
            digits = channel[len(self._user_prefix) :]
            if digits.isdigit():
                return int(digits)
        return None

    def _ready(self, user_id: int) -> bool:
        channel = self._channel(user_id)
        return self._up and channel in self._live and self._unconfirmed[channel] <= 0

    async def _listen_forever(self) -> None:
        attempt = 0
        while True:
            pubsub = self._redis.pubsub()
            try:
                await self._subscription(pubsub)
            except LinkErrors as error:
                failure: BaseException = error
            except Exception as error:  # a bug must not end the subscription for good
                log.exception("events: the Redis subscription failed")
                failure = error
            finally:
                with contextlib.suppress(*LinkErrors):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            if self._first_try is not None and not self._first_try.done():
                self._first_try.set_result(failure)
            if self._up:
                attempt = 0
            self._lost(failure)
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1

    async def _subscription(self, pubsub: PubSub) -> None:
        """One connection's life: subscribe, then read and follow the users here."""
        self._live = {self._everyone}
        self._unconfirmed = Counter([self._everyone])
        await pubsub.subscribe(self._everyone)
        tasks = [
            asyncio.create_task(self._read(pubsub)),
            asyncio.create_task(self._follow_users(pubsub)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # both run until they fail: this raises the failure
        raise RedisConnectionError("the subscription ended")

    async def _follow_users(self, pubsub: PubSub) -> None:
        """Keep the subscribed channels those of the users with a socket here."""
        self._dirty.set()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            wanted = {self._channel(user_id) for user_id in self._users} | {self._everyone}
            added, dropped = wanted - self._live, self._live - wanted
            if added:
                self._live |= added
                self._unconfirmed.update(added)
                await pubsub.subscribe(*added)
            if dropped:
                self._live -= dropped
                await pubsub.unsubscribe(*dropped)

    async def _read(self, pubsub: PubSub) -> None:
        silences = 0
        while True:
            message = await pubsub.get_message(timeout=HEARTBEAT)
            if message is None:
                silences += 1
                if silences >= SILENCES:
                    raise RedisConnectionError(f"no answer for {HEARTBEAT * SILENCES:.0f} s")
                await pubsub.ping()
                continue
            silences = 0
            kind, channel = message["type"], message["channel"]
            if kind == "message":
                self._deliver(channel, message["data"])
            elif kind == "subscribe":
                self._unconfirmed[channel] -= 1
                if channel == self._everyone:
                    self._came_up()
                elif (user_id := self._user_of(channel)) is not None:
                    self._confirmed(user_id)

    def _came_up(self) -> None:
        was_lost = self._first_try is not None and self._first_try.done()
        self._up = True
        if self._first_try is not None and not self._first_try.done():
            self._first_try.set_result(None)
        if was_lost:
            log.warning("events: Redis at %s is back; sockets here resync", self.shown_url)

    def _confirmed(self, user_id: int) -> None:
        if not self._ready(user_id):
            return
        self._release_waiters(user_id)
        if user_id in self._stale:
            self._stale.discard(user_id)
            self._local.publish(user_id, _resync())

    def _lost(self, error: BaseException) -> None:
        if self._up:
            log.warning(
                "events: lost Redis at %s (%s); sockets here stay open and resync when it is back",
                self.shown_url,
                error,
            )
        self._up = False
        self._stale |= self._users
        self._release_waiters()

    def _release_waiters(self, user_id: int | None = None) -> None:
        for waiter_user in [user_id] if user_id is not None else list(self._waiters):
            for waiter in self._waiters.pop(waiter_user, []):
                if not waiter.done():
                    waiter.set_result(None)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        try:
            envelope = json.loads(data)
            origin, event = envelope["origin"], envelope["event"]
            if not (isinstance(event, dict) and isinstance(event.get("type"), str)):
                raise ValueError("not an event")
        except (ValueError, KeyError, TypeError):
            self._warn_message("events: a message on %r is not an event; ignored", channel)
            return
        if origin == self._origin:
            return  # handed to the mailboxes here when it was published
        if channel == self._everyone:
            for each in list(self._users):
                self._local.publish(each, event)
        elif (user_id := self._user_of(channel)) is not None:
            self._local.publish(user_id, event)

    def _encode(self, event: Event) -> bytes:
        envelope: dict[str, Any] = {"origin": self._origin, "event": event}
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
