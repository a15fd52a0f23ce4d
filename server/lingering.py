"""Closing a connection without destroying the answer just written on it.

A server that answers before it has read the request's body (401, 413, or 503 while
the catalog is down: the body is not wanted) must close the connection, or read the
whole body. But a TCP socket closed with unread bytes in its receive buffer sends a
reset, not a FIN, and a reset makes the peer's kernel throw away what it had received
and not yet read: the answer itself. A client still sending (nginx streaming an upload
with `proxy_request_buffering off`, or any client that writes its whole body before it
reads) then sees "connection reset" instead of the answer, and nginx turns that into
its own 502.

So where the peer has sent bytes the server has not read, or is still to send a body
its request announced (an answer can go out before the first byte of it arrives: the
request policy marks such a connection `body_expected`), it closes as nginx does (its
`lingering_close`): shut down the sending side (a FIN after the answer), then read and
discard what the peer still sends, until it closes its side or `LINGER_SECONDS` pass,
and only then close the socket. At most `LINGER_AT_MOST` linger at once.
"""

from __future__ import annotations

import socket
from typing import Any

from tornado.ioloop import IOLoop

LINGER_SECONDS = 2.0
LINGER_AT_MOST = 64  # sockets lingering at once; past that, closed at once
READS_PER_WAKE = 16
CHUNK = 64 * 1024

_lingering: set[LingeringSocket] = set()


class LingeringSocket(socket.socket):
    """An accepted connection whose close() lingers (see the module's docstring)."""

    # A request on it announced a body that has not all been read yet.
    body_expected = False

    def close(self) -> None:
        if self.fileno() < 0 or self in _lingering:
            return
        loop = IOLoop.current(instance=False)
        owed = self.body_expected or self._unread()
        if loop is None or len(_lingering) >= LINGER_AT_MOST or not owed:
            super().close()
            return
        try:
            self.shutdown(socket.SHUT_WR)
        except OSError:  # not connected any more: nothing to protect
            super().close()
            return
        _lingering.add(self)
        timer = loop.call_later(LINGER_SECONDS, self._done, loop)
        self._timer: Any = timer
        loop.add_handler(self.fileno(), self._readable, IOLoop.READ)

    def _unread(self) -> bool:
        """Whether the peer sent bytes not read: only then would closing reset it.
        (An idle connection, evicted or timed out, closes at once: no descriptor
        is held for it past the connection caps.)"""
        try:
            return bool(self.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return False

    def _readable(self, fd: Any, events: int) -> None:
        loop = IOLoop.current()
        for _ in range(READS_PER_WAKE):
            try:
                if not self.recv(CHUNK):  # the peer closed its side: done
                    self._done(loop)
                    return
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._done(loop)
                return

    def _done(self, loop: IOLoop) -> None:
        if self not in _lingering:
            return
        _lingering.discard(self)
        loop.remove_timeout(self._timer)
        loop.remove_handler(self.fileno())
        super().close()


def lingering(connection: socket.socket) -> socket.socket:
    """The accepted `connection` as a LingeringSocket (the same descriptor)."""
    family, kind, proto = connection.family, connection.type, connection.proto
    timeout = connection.gettimeout()
    made = LingeringSocket(family, kind, proto, fileno=connection.detach())
    made.settimeout(timeout)
    return made


def lingering_now() -> int:
    """How many closed connections are still draining (for tests and metrics)."""
    return len(_lingering)
