"""Events on their way to Redis: a bounded outbox that never makes a publisher wait.

One task sends what is queued, in pipelined batches. When Redis cannot be reached (or
the outbox is full) events are dropped, counted, and logged now and then, and the
users they were for are owed a `resync`, sent to their channels once Redis answers
again: their sockets on other processes then reload what they missed. Past
MAX_RESYNC_USERS owed users, one message on the everyone channel tells every socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("server.services.events_redis")

MAX_OUTBOX = 10_000  # events waiting to go out: seconds of a busy server, a few MiB
BATCH = 256  # PUBLISH commands a round trip
MAX_RESYNC_USERS = 1_000
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
LOG_EVERY = 60.0

LinkErrors = (RedisError, OSError)


class RateLimitedWarning:
    """A warning at most once an interval, saying how many were held back meanwhile."""

    def __init__(self, interval: float = LOG_EVERY, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def __call__(self, message: str, *args: object) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._held += 1
            return
        if self._held:
            message += " (and %d more like it since)"
            args += (self._held,)
        self._last, self._held = now, 0
        log.warning(message, *args)


class RedisOutbox:
    def __init__(
        self,
        redis: Redis,
        shown_url: str,
        channel: Callable[[int], bytes],
        everyone: bytes,
        resync: bytes,
    ) -> None:
        self._redis = redis
        self._shown_url = shown_url
        self._channel = channel
        self._everyone = everyone
        self._resync = resync  # the encoded resync event
        self._queue: deque[tuple[int, bytes]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.down = False
        self._owed: set[int] = set()  # users some of whose events were dropped
        self._owed_everyone = False
        self.published = 0
        self.dropped = 0
        self._warn = RateLimitedWarning()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def offer(self, user_id: int, payload: bytes) -> None:
        """Queue one user's event for Redis, or drop it (and owe a resync): never wait."""
        if self.down:
            self._drop(user_id)
            return
        if len(self._queue) >= MAX_OUTBOX:
            self._drop(user_id)
            self._warn(
                "events: %d events wait for Redis at %s; dropping new ones (resync follows)",
                len(self._queue),
                self._shown_url,
            )
            return
        self._queue.append((user_id, payload))
        self._drained.clear()
        self._wake.set()

    async def flush(self, seconds: float) -> bool:
        """Wait until everything offered so far went to Redis (or was dropped)."""
        try:
            await asyncio.wait_for(self._drained.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _drop(self, user_id: int) -> None:
        self.dropped += 1
        if len(self._owed) < MAX_RESYNC_USERS:
            self._owed.add(user_id)
        else:
            self._owed_everyone = True

    async def _send(self, messages: list[tuple[bytes, bytes]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, payload in messages:
                pipe.publish(channel, payload)
            await pipe.execute()

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            try:
                await self._send([(self._channel(user_id), payload) for user_id, payload in batch])
                self.published += len(batch)
                if self._owed or self._owed_everyone:
                    await self._send_resyncs()
            except LinkErrors as error:
                self.down = True
                for user_id, _ in batch:
                    self._drop(user_id)
                while self._queue:
                    self._drop(self._queue.popleft()[0])
                self._drained.set()  # nothing more will go out of what was offered
                self._warn(
                    "events: cannot publish to Redis at %s (%s); events for other processes "
                    "are dropped until it answers, then resync",
                    self._shown_url,
                    error,
                )
                await self._recover()

    async def _recover(self) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1
            try:
                await self._redis.ping()
                await self._send_resyncs()
            except LinkErrors:
                continue
            self.down = False
            log.warning("events: publishing to Redis at %s again", self._shown_url)
            return

    async def _send_resyncs(self) -> None:
        """Tell the users whose events were dropped, wherever their sockets are."""
        users, everyone = self._owed, self._owed_everyone
        self._owed, self._owed_everyone = set(), False
        targets = [self._everyone] if everyone else [self._channel(u) for u in sorted(users)]
        try:
            for start in range(0, len(targets), BATCH):
                await self._send(
                    [(channel, self._resync) for channel in targets[start : start + BATCH]]
                )
        except LinkErrors:
            self._owed |= users
            self._owed_everyone |= everyone
            raise
        log.info("events: %s told to resync", "everyone" if everyone else f"{len(users)} users")
