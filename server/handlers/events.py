"""`GET /api/v1/events`: the caller's event stream over a WebSocket.

Authenticated with `?token=` (WeChat's `connectSocket` can also send the
Authorization header). A connection without a valid token is accepted and then
closed with code 4401, so that clients see why instead of a bare handshake error.
When the device is revoked the socket is closed with code 4403: at once when the
revocation happens in this process or reaches it through the hub (Redis), else at
the server's next check.

Every write is awaited, one at a time: what a socket that does not read costs is
its mailbox, never a queue of frames. A token has at most --max-sockets-per-device
sockets (a new one closes the oldest with 4409) and the server --max-sockets (past
it a new one is closed with 4429). A text `ping` is answered with a pong at most
`PINGS_PER_SECOND` times a second, and not while a write is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import tornado.websocket

from ..catalog import Device, User
from ..services import Services
from ..services.events import Mailbox
from ..services.media_urls import UserSigner
from ..views import event_json
from .base import bearer_token, query_token

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_REVOKED = 4403
CLOSE_OVERFLOW = 4408
CLOSE_REPLACED = 4409
CLOSE_BUSY = 4429
MAX_INCOMING = 4096
PINGS_PER_SECOND = 2.0
PING_BURST = 4.0
PONG = '{"type": "pong"}'


class EventsHandler(tornado.websocket.WebSocketHandler):
    services: Services
    user: User | None = None
    device: Device | None = None
    mailbox: Mailbox | None = None
    pump: asyncio.Task[None] | None = None
    admitted = False

    def initialize(self, services: Services) -> None:
        self.services = services
        self.writing = 0  # writes sent and not yet drained
        self._ping_allowance = PING_BURST
        self._ping_at = time.monotonic()
        self._pong: asyncio.Task[None] | None = None

    def check_origin(self, origin: str) -> bool:
        # The token, not the origin, is what authenticates a socket; mini-programs
        # send no meaningful Origin.
        return True

    async def get(self, *args: Any, **kwargs: Any) -> None:
        token = query_token(self.request) or bearer_token(self.request)
        found = await self.services.auth.authenticate(token) if token else None
        if found is not None:
            self.user, self.device = found
        await super().get(*args, **kwargs)

    async def open(self, *args: str, **kwargs: str) -> None:
        if self.user is None:
            self.close(CLOSE_UNAUTHORIZED, "unauthorized: a valid token is required")
            return
        assert self.device is not None
        if not self.services.sockets.admit(self.device.id, self._replaced):
            self.close(CLOSE_BUSY, "busy: the server has too many sockets open; retry later")
            return
        self.admitted = True
        self.mailbox = self.services.events.subscribe(
            self.user.id, self.device.id, on_revoked=self._revoked
        )
        # hello promises that nothing is missed from then on: with several processes,
        # that holds once the hub's subscription for this user has taken.
        await self.services.events.subscribed(self.user.id)
        if self.mailbox.closed:  # the socket closed, or the device was revoked, meanwhile
            return
        hello = json.dumps({"type": "hello", "user": self.user.name})
        signer = await self.services.media_urls.signer(self.user.id)
        self.pump = asyncio.get_running_loop().create_task(self._pump(self.mailbox, hello, signer))

    async def send(self, text: str) -> None:
        self.writing += 1
        try:
            await self.write_message(text)
        finally:
            self.writing -= 1

    async def _pump(self, mailbox: Mailbox, hello: str, signer: UserSigner) -> None:
        try:
            await self.send(hello)
            while True:
                event = await mailbox.get()
                if event is None:
                    break
                # Waiting for each write to drain is the back-pressure: while a
                # slow socket drains, progress piles up in the mailbox as one
                # newest event per transfer.
                await self.send(json.dumps(event_json(event, signer), ensure_ascii=False))
        except tornado.websocket.WebSocketClosedError:
            return
        if mailbox.overflowed:
            self.close(CLOSE_OVERFLOW, "too far behind: reconnect and reload")

    def _replaced(self) -> None:
        self.admitted = False
        self.close(CLOSE_REPLACED, "replaced: this device opened a newer socket")

    def _revoked(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
        self.close(CLOSE_REVOKED, "revoked: this device was signed out")

    def on_message(self, message: str | bytes) -> None:
        # Clients only listen; a "ping" text gets a "pong" for keep-alive checks
        # from clients that cannot see WebSocket-level pings.
        if message == "ping" and self._ping_allowed():
            self._pong = asyncio.get_running_loop().create_task(self._send_pong())

    def _ping_allowed(self) -> bool:
        now = time.monotonic()
        elapsed, self._ping_at = now - self._ping_at, now
        self._ping_allowance = min(PING_BURST, self._ping_allowance + elapsed * PINGS_PER_SECOND)
        if self.writing or self._ping_allowance < 1:
            return False  # dropped: the client learns it is alive from what is in flight
        self._ping_allowance -= 1
        return True

    async def _send_pong(self) -> None:
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            await self.send(PONG)

    def on_close(self) -> None:
        if self.admitted and self.device is not None:
            self.services.sockets.release(self.device.id, self._replaced)
            self.admitted = False
        if self.user is not None and self.mailbox is not None:
            self.services.events.unsubscribe(self.user.id, self.mailbox)
        if self.pump is not None:
            self.pump.cancel()
