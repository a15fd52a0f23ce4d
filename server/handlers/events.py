"""`GET /api/v1/events`: the caller's event stream over a WebSocket.

Authenticated with `?token=` (WeChat's `connectSocket` can also send the
Authorization header). A connection without a valid token is accepted and then
closed with code 4401, so that clients see why instead of a bare handshake error.
When the device is revoked the socket is closed with code 4403: at once when the
revocation happens in this process or reaches it through the hub (Redis), else at
the server's next check.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import tornado.websocket

from ..catalog import Device, User
from ..services import Services
from ..services.events import Mailbox
from ..views import event_json
from .base import bearer_token

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_REVOKED = 4403
CLOSE_OVERFLOW = 4408
MAX_INCOMING = 4096


class EventsHandler(tornado.websocket.WebSocketHandler):
    services: Services
    user: User | None = None
    device: Device | None = None
    mailbox: Mailbox | None = None
    pump: asyncio.Task[None] | None = None

    def initialize(self, services: Services) -> None:
        self.services = services

    def check_origin(self, origin: str) -> bool:
        # The token, not the origin, is what authenticates a socket; mini-programs
        # send no meaningful Origin.
        return True

    async def get(self, *args: Any, **kwargs: Any) -> None:
        token = self.get_query_argument("token", None) or bearer_token(self.request)
        found = await self.services.auth.authenticate(token) if token else None
        if found is not None:
            self.user, self.device = found
        await super().get(*args, **kwargs)

    async def open(self, *args: str, **kwargs: str) -> None:
        if self.user is None:
            self.close(CLOSE_UNAUTHORIZED, "unauthorized: a valid token is required")
            return
        assert self.device is not None
        self.mailbox = self.services.events.subscribe(
            self.user.id, self.device.id, on_revoked=self._revoked
        )
        # hello promises that nothing is missed from then on: with several processes,
        # that holds once the hub's subscription for this user has taken.
        await self.services.events.subscribed(self.user.id)
        if self.mailbox.closed:  # the socket closed, or the device was revoked, meanwhile
            return
        self.pump = asyncio.get_running_loop().create_task(self._pump(self.mailbox))
        self.write_message(json.dumps({"type": "hello", "user": self.user.name}))

    async def _pump(self, mailbox: Mailbox) -> None:
        try:
            while True:
                event = await mailbox.get()
                if event is None:
                    break
                # Waiting for each write to drain is the back-pressure: while a
                # slow socket drains, progress piles up in the mailbox as one
                # newest event per transfer.
                await self.write_message(json.dumps(event_json(event), ensure_ascii=False))
        except tornado.websocket.WebSocketClosedError:
            return
        if mailbox.overflowed:
            self.close(CLOSE_OVERFLOW, "too far behind: reconnect and reload")

    def _revoked(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
        self.close(CLOSE_REVOKED, "revoked: this device was signed out")

    def on_message(self, message: str | bytes) -> None:
        # Clients only listen; a "ping" text gets a "pong" for keep-alive checks
        # from clients that cannot see WebSocket-level pings.
        if message == "ping":
            self.write_message('{"type": "pong"}')

    def on_close(self) -> None:
        if self.user is not None and self.mailbox is not None:
            self.services.events.unsubscribe(self.user.id, self.mailbox)
        if self.pump is not None:
            self.pump.cancel()
