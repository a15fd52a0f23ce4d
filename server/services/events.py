"""Who is listening, and what they are told: the per-user event stream.

The hub is the one place that knows about subscribers; publishers (uploads,
downloads, the library) only call `publish`. A Redis-backed hub for several
processes (`events_redis.py`) takes the same calls.

Each subscriber has a bounded mailbox. Progress events for one transfer replace
each other while they wait (the newest wins), so a slow or stalled socket costs
one slot per transfer, never a growing queue, and never slows a publisher.
Final events (done, failed, added, deleted...) are never dropped.

`device.revoked` is an ordinary event to the user's other devices, and the end
for the revoked device's own mailboxes: they drop what waits, close, and tell
their socket to close. Because it travels as an event, any hub that delivers
events to mailboxes (a Redis hub for several processes too) carries revocation.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

Event = dict[str, Any]

PROGRESS_TYPES = {
    "upload.progress": "upload_id",
    "download.progress": "download_id",
    "video.preview": "id",  # until its `done`, which is final
}
MAX_PENDING_FINAL = 1000
DEVICE_REVOKED = "device.revoked"
# Why a mailbox let an event go: a newer progress event of the same transfer took its
# place, the mailbox overflowed (and closed), or it was already closed.
DROPPED_SUPERSEDED = "superseded"
DROPPED_OVERFLOW = "overflow"
DROPPED_CLOSED = "closed"


def progress_key(event: Event) -> tuple[str, str] | None:
    """Events with the same key supersede each other while queued."""
    field = PROGRESS_TYPES.get(event.get("type", ""))
    if field is None or event.get("done") is True:
        return None
    return event["type"], str(event.get(field))


class Mailbox:
    """One subscriber's queue: coalesced progress, every final event."""

    def __init__(
        self, device_id: int | None = None, on_revoked: Callable[[], None] | None = None
    ) -> None:
        self.device_id = device_id
        self._on_revoked = on_revoked
        self._pending: OrderedDict[object, Event] = OrderedDict()
        self._serial = 0
        self._ready = asyncio.Event()
        self.closed = False
        self.overflowed = False
        self.revoked = False

    def put(self, event: Event) -> str | None:
        """Queue the event; what was lost by it, if anything (for the metrics)."""
        if self.closed:
            return DROPPED_CLOSED
        if (
            event.get("type") == DEVICE_REVOKED
            and self.device_id is not None
            and event.get("device_id") == self.device_id
        ):
            # Nothing more for a signed-out device, not even what is already queued.
            self._pending.clear()
            self.revoked = True
            self.close()
            if self._on_revoked is not None:
                self._on_revoked()
            return None
        key: object = progress_key(event)
        lost: str | None = None
        if key is not None and key in self._pending:
            self._pending[key] = event  # keeps its place, carries the newest numbers
            lost = DROPPED_SUPERSEDED
        else:
            if key is None:
                self._serial += 1
                key = self._serial
                if len(self._pending) >= MAX_PENDING_FINAL:
                    # A socket this far behind is dead in all but name: close it
                    # so the client reconnects and reloads, rather than grow.
                    self.overflowed = True
                    self.close()
                    return DROPPED_OVERFLOW
            self._pending[key] = event
        self._ready.set()
        return lost

    async def get(self) -> Event | None:
        """The next event, or None once closed."""
        while not self._pending:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        _, event = self._pending.popitem(last=False)
        return event

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    def __len__(self) -> int:
        return len(self._pending)


class EventHub(Protocol):
    async def start(self) -> None:
        """Reach the backend, if there is one; an error when it cannot be reached."""

    async def close(self) -> None:
        """Send what is still going out, then let go of the backend."""

    def subscribe(
        self,
        user_id: int,
        device_id: int | None = None,
        on_revoked: Callable[[], None] | None = None,
    ) -> Mailbox: ...

    async def subscribed(self, user_id: int) -> None:
        """Return once events published anywhere reach this user's mailboxes here."""

    def unsubscribe(self, user_id: int, mailbox: Mailbox) -> None: ...

    def publish(self, user_id: int, event: Event) -> None: ...

    def connected_devices(self) -> set[int]:
        """The devices with an open mailbox in this process."""


class LocalEventHub:
    """The embedded hub: subscribers of this process only."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[Mailbox]] = {}
        self.published = 0  # publish() calls
        self.delivered = 0  # events put into a mailbox
        self.lost: Counter[str] = Counter()  # events a mailbox let go, by reason

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def subscribed(self, user_id: int) -> None:
        pass  # a mailbox hears every publish from the moment it exists

    def subscribe(
        self,
        user_id: int,
        device_id: int | None = None,
        on_revoked: Callable[[], None] | None = None,
    ) -> Mailbox:
        mailbox = Mailbox(device_id, on_revoked)
        self._subscribers.setdefault(user_id, set()).add(mailbox)
        return mailbox

    def unsubscribe(self, user_id: int, mailbox: Mailbox) -> None:
        mailbox.close()
        listeners = self._subscribers.get(user_id)
        if listeners is not None:
            listeners.discard(mailbox)
            if not listeners:
                del self._subscribers[user_id]

    def publish(self, user_id: int, event: Event) -> None:
        self.published += 1
        for mailbox in list(self._subscribers.get(user_id, ())):
            lost = mailbox.put(event)
            if lost is None or lost == DROPPED_SUPERSEDED:  # superseded: an older one went
                self.delivered += 1
            if lost is not None:
                self.lost[lost] += 1

    def connected_devices(self) -> set[int]:
        return {
            mailbox.device_id
            for mailboxes in self._subscribers.values()
            for mailbox in mailboxes
            if mailbox.device_id is not None and not mailbox.closed
        }

    def listeners(self, user_id: int) -> int:
        return len(self._subscribers.get(user_id, ()))

    @property
    def mailbox_hub(self) -> LocalEventHub:
        """Where this process's mailboxes are: itself."""
        return self

    def mailboxes(self) -> int:
        """Open mailboxes, one for each socket of this process."""
        return sum(len(mailboxes) for mailboxes in self._subscribers.values())

    def backlog(self, user_id: int) -> list[int]:
        """How many events wait in each of the user's mailboxes."""
        return [len(m) for m in self._subscribers.get(user_id, ())]


class SocketLimits:
    """How many event sockets are open: at most `per_device` on one token (a new one
    closes the oldest, so that a phone reconnecting after a lost network is never
    locked out by its own dead sockets) and `limit` on the server (past it a new
    one is refused).

    Each socket is known by the callable that closes it.
    """

    def __init__(self, limit: int, per_device: int) -> None:
        self.limit = limit
        self.per_device = per_device
        self._by_device: dict[int, deque[Callable[[], None]]] = {}
        self._open = 0

    def admit(self, device_id: int, close: Callable[[], None]) -> bool:
        if self._open >= self.limit:
            return False
        sockets = self._by_device.setdefault(device_id, deque())
        sockets.append(close)
        self._open += 1
        while len(sockets) > self.per_device:
            oldest = sockets.popleft()
            self._open -= 1
            oldest()
        return True

    def release(self, device_id: int, close: Callable[[], None]) -> None:
        sockets = self._by_device.get(device_id)
        if sockets is None or close not in sockets:
            return
        sockets.remove(close)
        self._open -= 1
        if not sockets:
            del self._by_device[device_id]

    def __len__(self) -> int:
        return self._open

    def on_device(self, device_id: int) -> int:
        return len(self._by_device.get(device_id, ()))


class Throttle:
    """At most one progress event per interval for a transfer; first and last always."""

    def __init__(self, interval: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._last_done = -1

    def due(self, done: int, total: int | None) -> bool:
        now = self._clock()
        final = total is not None and done >= total
        if done == self._last_done:
            return False
        if self._last is None or final or now - self._last >= self._interval:
            self._last = now
            self._last_done = done
            return True
        return False


class TransferReporter:
    """Progress of one transfer as events: throttled progress, then one final event."""

    def __init__(
        self,
        hub: EventHub,
        user_id: int,
        kind: str,
        transfer_id: str,
        total: int | None,
        **fields: Any,
    ) -> None:
        self._hub = hub
        self._user_id = user_id
        self._kind = kind  # "upload" or "download"
        self._id_field = f"{kind}_id"
        self.transfer_id = transfer_id
        self.total = total
        self._fields = fields
        self._throttle = Throttle()

    def _event(self, suffix: str, **body: Any) -> Event:
        return {"type": f"{self._kind}.{suffix}", self._id_field: self.transfer_id, **body}

    def progress(self, done: int) -> None:
        if self._throttle.due(done, self.total):
            word = "received" if self._kind == "upload" else "sent"
            self._hub.publish(
                self._user_id,
                self._event("progress", **self._fields, **{word: done, "total": self.total}),
            )

    def finish(self, suffix: str, **body: Any) -> None:
        self._hub.publish(self._user_id, self._event(suffix, **body))
