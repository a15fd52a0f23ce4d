"""Many events WebSockets at once, and what each heard (`image.added`, `upload.done`)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import tornado.websocket
from bench_http import API, HOST


@dataclass
class Socket:
    """What one events WebSocket heard."""

    user: str
    messages: int = 0
    added: set[str] = field(default_factory=set)  # image ids of `image.added`
    done: set[str] = field(default_factory=set)  # upload ids of `upload.done`
    closed: str | None = None  # why, if the server closed it


class EventWatcher:
    """Many events WebSockets, read on an event loop of their own in a thread."""

    def __init__(self, port: int, users: Sequence[tuple[str, str]]) -> None:
        self.port = port
        self.users = list(users)  # (user, token), one a socket
        self.sockets = [Socket(user) for user, _ in self.users]
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=120):
            raise RuntimeError("the events sockets did not all connect")
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            connections = []
            for (_, token), socket_ in zip(self.users, self.sockets, strict=True):
                url = f"ws://{HOST}:{self.port}{API}/events?token={token}"
                connection = await tornado.websocket.websocket_connect(
                    url, max_message_size=1 << 20
                )
                hello = await connection.read_message()
                if not isinstance(hello, str) or json.loads(hello).get("type") != "hello":
                    raise RuntimeError(f"the first event was {hello!r}, not hello")
                connections.append((connection, socket_))
        except BaseException as error:
            self._failure = error
            self._ready.set()
            return
        readers = [asyncio.create_task(self._read(c, s)) for c, s in connections]
        self._ready.set()
        await self._stop.wait()
        for connection, _ in connections:
            connection.close()
        await asyncio.gather(*readers, return_exceptions=True)

    async def _read(
        self, connection: tornado.websocket.WebSocketClientConnection, socket_: Socket
    ) -> None:
        while (message := await connection.read_message()) is not None:
            socket_.messages += 1
            event = json.loads(message)
            if event["type"] == "image.added":
                socket_.added.add(event["image"]["id"])
            elif event["type"] == "upload.done":
                socket_.done.add(event["upload_id"])
        if self._stop is not None and not self._stop.is_set():
            socket_.closed = f"{connection.close_code} {connection.close_reason}"

    def wait_for(self, added: dict[str, set[str]], timeout: float) -> list[str]:
        """Wait until every socket heard `image.added` for its user's photos; what is missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [
                f"socket {n} ({s.user}): {len(added.get(s.user, set()) - s.added)} not announced"
                for n, s in enumerate(self.sockets)
                if added.get(s.user, set()) - s.added
            ]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.1)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)
