"""What a connection may cost before the application sees it.

Tornado's HTTP server, composed with the limits every connection lives under:

- at most `max_connections` open, and `per_address` from one client address
  (an IPv6 /64; the trusted proxies are exempt), refused at accept, before any
  buffer is made for them; when the server is full, a newcomer takes the place
  of the connection that has waited longest without sending a request, so that
  idle connections cannot lock out a client that has something to ask;
- the accept loop backs off when the process is out of file descriptors, rather
  than spin on a listening socket it cannot accept from, and says so at most
  once a second;
- headers must arrive within the header timeout (Tornado's own), a request line
  and headers over `max_header_size` are answered 431;
- at most `MAX_WRITE_BUFFER` bytes wait unsent on a connection;
- a body may take as long as it takes while it keeps coming: the timeout is on
  the silence between two reads, not on the whole body;
- until a handler has checked its token a request may send at most
  `unauthenticated_body` bytes (handlers raise their own limit once they know
  who is calling);
- the client's address comes from one forwarded header, and only when the peer
  is a trusted proxy;
- a connection closed before its request's body was read lingers (lingering.py),
  so that the answer reaches the client rather than a reset.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.log
from tornado.ioloop import IOLoop

from .lingering import lingering
from .request_policy import RequestPolicy
from .services.throttle import client_key

log = logging.getLogger(__name__)

# Out of descriptors (or kernel memory): accepting again at once only spins.
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_BACKOFF = (0.05, 1.0)
ACCEPT_BATCH = 128
# What may wait unsent on one connection. Handlers await their writes chunk by
# chunk; only frames the protocol answers by itself (a WebSocket pong for every
# ping, to a client that never reads) could pile up, and they stop here.
MAX_WRITE_BUFFER = 32 * 1024 * 1024


class EverySecond:
    """A log line at most once a second, with how many were held back."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0) -> None:
        self._log = logger
        self._interval = interval
        self._last = -interval
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._held += 1
            return
        held, self._held, self._last = self._held, 0, now
        suffix = f" ({held} more like it held back)" if held else ""
        self._log.warning(message + suffix, *args)


@dataclass(frozen=True)
class Policy:
    max_connections: int
    per_address: int
    max_header_size: int
    header_timeout: float
    body_timeout: float
    unauthenticated_body: int
    trust_forwarded: bool = False
    forwarded_header: str = "X-Forwarded-For"
    trusted_proxies: tuple[str, ...] = ()


class Proxies:
    """The reverse proxies whose forwarded headers are believed."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)


class LimitedHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTPServer under a `Policy` (see the module's docstring)."""

    def initialize(  # type: ignore[override]
        self, request_callback: Any, *, policy: Policy, **kwargs: Any
    ) -> None:
        # Tornado's hard ceiling is above ours, so that a block between the two is
        # parsed and answered 431 instead of the connection being dropped.
        super().initialize(
            request_callback,
            max_header_size=max(4 * policy.max_header_size, 64 * 1024),
            idle_connection_timeout=policy.header_timeout,
            body_timeout=None,
            xheaders=False,
            **kwargs,
        )
        self.policy = policy
        self.proxies = Proxies(policy.trusted_proxies if policy.trust_forwarded else ())
        self.open_connections = 0
        self.open_by_address: dict[str, int] = {}
        self._address_of: dict[tornado.iostream.IOStream, str] = {}
        # The key of the connection being set up (handle_stream takes it).
        self._admitted: str | None = None
        # Connections waiting for a request's headers, the longest-waiting first.
        self._idle: OrderedDict[Any, None] = OrderedDict()
        # Each connection's request in progress (its body timer ends with the connection).
        self._requests: dict[Any, RequestPolicy] = {}
        self.refused = 0
        self.evicted = 0
        self._refusals = EverySecond(log)
        self.starved = EverySecond(log)  # out of descriptors

    # connections ---------------------------------------------------------------

    def admit(self, address: Any) -> str | None:
        """The key a new connection is counted under, or None to refuse it."""
        peer = str(address[0]) if isinstance(address, tuple) and address else "local"
        key = client_key(peer)
        from_there = self.open_by_address.get(key, 0)
        if from_there >= self.policy.per_address and peer not in self.proxies:
            self._refuse(
                "%s has %d connections open (--max-connections-per-address)", key, from_there
            )
            return None
        if self.open_connections >= self.policy.max_connections and not self._evict_idle():
            self._refuse(
                "the server has %d connections open (--max-connections)", self.open_connections
            )
            return None
        self.open_by_address[key] = from_there + 1
        self.open_connections += 1
        return key

    def _evict_idle(self) -> bool:
        """Close the connection that has waited longest for a request; False if none."""
        while self._idle:
            server_conn, _ = self._idle.popitem(last=False)
            stream = server_conn.stream
            key = self._address_of.pop(stream, None)
            if key is None or stream.closed():
                continue
            self._release(key)
            stream.close()
            self.evicted += 1
            return True
        return False

    def _refuse(self, why: str, *args: object) -> None:
        self.refused += 1
        self._refusals.warning("refusing connections: " + why, *args)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        # TCPServer.add_sockets, with our own accept loop in place of tornado.netutil's
        # (which logs and retries every EMFILE at once, forever).
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = Acceptor(self, sock).stop

    def accepted(self, connection: socket.socket, address: Any) -> None:
        """A socket the accept loop took: counted and served, or closed at once."""
        key = self.admit(address)
        if key is None:
            connection.close()
            return
        self._admitted = key
        connection = lingering(connection)  # its close() no longer destroys the answer
        try:
            self._handle_connection(connection, address)
        except Exception:
            connection.close()
            raise
        finally:
            if self._admitted is not None:  # closed during the TLS set-up: no stream
                self._release(key)
                self._admitted = None

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]) -> None:
        stream.max_write_buffer_size = MAX_WRITE_BUFFER
        if self._admitted is not None:
            self._address_of[stream] = self._admitted
            self._admitted = None
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self._idle.pop(server_conn, None)
        request = self._requests.pop(server_conn, None)
        if request is not None:
            request.connection_closed()
        stream = getattr(server_conn, "stream", None)
        key = self._address_of.pop(stream, None) if stream is not None else None
        if key is not None:
            self._release(key)

    def busy(self, server_conn: object) -> None:
        """The connection has sent a request: it is no longer idle."""
        self._idle.pop(server_conn, None)

    def _release(self, key: str) -> None:
        self.open_connections -= 1
        left = self.open_by_address.get(key, 0) - 1
        if left > 0:
            self.open_by_address[key] = left
        else:
            self.open_by_address.pop(key, None)

    # requests ------------------------------------------------------------------

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        inner = super().start_request(server_conn, request_conn)
        self._idle[server_conn] = None
        self._idle.move_to_end(server_conn)
        request = self._requests[server_conn] = RequestPolicy(
            self, inner, request_conn, server_conn
        )
        return request


class Acceptor:
    """Accepts on one listening socket for a `LimitedHTTPServer`; when the process is
    out of descriptors (or kernel memory) it stops listening for a while, doubling
    the pause up to a second, instead of being woken at once to fail again."""

    def __init__(self, server: LimitedHTTPServer, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self._loop = IOLoop.current()
        self._backoff = ACCEPT_BACKOFF[0]
        self._stopped = False
        self._listening = False
        self._listen()

    def _listen(self) -> None:
        if not self._stopped and not self._listening:
            self._listening = True
            self._loop.add_handler(self._sock, self._ready, IOLoop.READ)

    def _pause(self, error: OSError) -> None:
        self._server.starved.warning(
            "cannot accept connections (%s): pausing %.2fs", error.strerror, self._backoff
        )
        self._loop.remove_handler(self._sock)
        self._listening = False
        self._loop.call_later(self._backoff, self._listen)
        self._backoff = min(self._backoff * 2, ACCEPT_BACKOFF[1])

    def _ready(self, fd: Any, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._stopped or not self._listening:
                return
            try:
                connection, address = self._sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    raise
                self._pause(error)
                return
            self._backoff = ACCEPT_BACKOFF[0]
            self._server.accepted(connection, address)

    def stop(self) -> None:
        if self._listening:
            self._loop.remove_handler(self._sock)
            self._listening = False
        self._stopped = True
