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
  is a trusted proxy.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.log
from tornado.ioloop import IOLoop

from . import errors
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


def forwarded_address(header: str, value: str, proxies: Proxies) -> str | None:
    """The client's address in a trusted proxy's header, or None if it names none.

    X-Forwarded-For is a list each proxy appends to: the rightmost address that is
    not one of ours is the one our proxy saw; whatever is left of it the client
    wrote. Any other header (X-Real-Ip...) is taken whole, as the proxy sets it.
    """
    candidates = [part.strip() for part in value.split(",")]
    if header.lower() == "x-forwarded-for":
        candidates = [c for c in reversed(candidates) if c and c not in proxies][:1]
    elif len(candidates) != 1:
        return None
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return None
    return None


def header_block_size(start_line: tornado.httputil.RequestStartLine, headers: Any) -> int:
    line = len(start_line.method) + len(start_line.path) + len(start_line.version) + 4
    return line + sum(len(name) + len(value) + 4 for name, value in headers.get_all())


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
        self.open_by_address: dict[str, int] = {}
        self._address_of: dict[tornado.iostream.IOStream, str] = {}
        # Connections waiting for a request's headers, the longest-waiting first.
        self._idle: OrderedDict[Any, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0
        self._refusals = EverySecond(log)
        self._starved = EverySecond(log)

    # connections ---------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        return sum(self.open_by_address.values())

    def admit(self, address: Any) -> str | None:
        """The key a new connection is counted under, or None to refuse it."""
        peer = str(address[0]) if isinstance(address, tuple) and address else "local"
        key = client_key(peer)
        if self.open_by_address.get(key, 0) >= self.policy.per_address and peer not in self.proxies:
            self._refuse(f"{key} has %d connections open (--max-connections-per-address)", key)
            return None
        if self.open_connections >= self.policy.max_connections and not self._evict_idle():
            self._refuse("the server has %d connections open (--max-connections)", key)
            return None
        self.open_by_address[key] = self.open_by_address.get(key, 0) + 1
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

    def _refuse(self, why: str, key: str) -> None:
        self.refused += 1
        count = self.open_connections if "server" in why else self.open_by_address.get(key, 0)
        self._refusals.warning("refusing connections: " + why, count)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        # TCPServer.add_sockets with our own accept loop (tornado.netutil's logs and
        # retries every EMFILE at once, forever).
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        loop = IOLoop.current()
        state = {"removed": False, "listening": True, "backoff": ACCEPT_BACKOFF[0]}

        def resume() -> None:
            if not state["removed"] and not state["listening"]:
                state["listening"] = True
                loop.add_handler(sock, on_ready, IOLoop.READ)

        def on_ready(fd: Any, events: int) -> None:
            for _ in range(ACCEPT_BATCH):
                if state["removed"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as error:
                    if error.errno not in _OUT_OF_RESOURCES:
                        raise
                    self._starved.warning(
                        "cannot accept connections (%s): pausing %.2fs",
                        error.strerror,
                        state["backoff"],
                    )
                    loop.remove_handler(sock)
                    state["listening"] = False
                    loop.call_later(float(state["backoff"]), resume)
                    state["backoff"] = min(float(state["backoff"]) * 2, ACCEPT_BACKOFF[1])
                    return
                state["backoff"] = ACCEPT_BACKOFF[0]
                key = self.admit(address)
                if key is None:
                    connection.close()
                    continue
                try:
                    self._pending_key = key
                    self._handle_connection(connection, address)
                except Exception:
                    self._release(key)
                    connection.close()
                    raise
                finally:
                    self._pending_key = None

        def remove() -> None:
            if state["listening"]:
                loop.remove_handler(sock)
            state["removed"] = True

        loop.add_handler(sock, on_ready, IOLoop.READ)
        return remove

    _pending_key: str | None = None

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]) -> None:
        stream.max_write_buffer_size = MAX_WRITE_BUFFER
        key = self._pending_key
        if key is not None:
            self._address_of[stream] = key
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self._idle.pop(server_conn, None)
        stream = getattr(server_conn, "stream", None)
        key = self._address_of.pop(stream, None) if stream is not None else None
        if key is not None:
            self._release(key)

    def busy(self, server_conn: object) -> None:
        """The connection has sent a request: it is no longer idle."""
        self._idle.pop(server_conn, None)

    def _release(self, key: str) -> None:
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
        return RequestPolicy(self, inner, request_conn, server_conn)


class RequestPolicy(tornado.httputil.HTTPMessageDelegate):
    """One request under the server's policy, in front of the application's delegate."""

    def __init__(
        self,
        server: LimitedHTTPServer,
        inner: tornado.httputil.HTTPMessageDelegate,
        connection: tornado.httputil.HTTPConnection,
        server_conn: object,
    ) -> None:
        self._server = server
        self._server_conn = server_conn
        self._inner = inner
        self._connection = connection
        self._refused = False
        self._timer: object | None = None
        self._restore: tuple[str, str] | None = None

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        self._server.busy(self._server_conn)
        policy = self._server.policy
        if header_block_size(start_line, headers) > policy.max_header_size:
            self._refuse_headers(start_line)
            return None
        # Handlers raise it (set_max_body_size) once they know who is calling.
        self._connection.set_max_body_size(policy.unauthenticated_body)  # type: ignore[attr-defined]
        self._apply_forwarded(headers)
        return self._then_watch_body(self._inner.headers_received(start_line, headers), headers)

    async def _then_watch_body(
        self, prepared: Awaitable[None] | None, headers: tornado.httputil.HTTPHeaders
    ) -> None:
        if prepared is not None:
            await prepared
        if headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in headers:
            self._arm()

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._refused:
            return None
        self._disarm()
        result = self._inner.data_received(chunk)
        if result is None:
            self._arm()
            return None
        return self._rearm_after(result)

    async def _rearm_after(self, result: Awaitable[None]) -> None:
        await result
        self._arm()

    def finish(self) -> None:
        self._disarm()
        self._unapply_forwarded()
        if not self._refused:
            self._inner.finish()

    def on_connection_close(self) -> None:
        self._disarm()
        self._unapply_forwarded()
        if not self._refused:
            self._inner.on_connection_close()

    # the body's idle timeout -----------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        loop = IOLoop.current()
        self._timer = loop.call_later(self._server.policy.body_timeout, self._silent)

    def _disarm(self) -> None:
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
            self._timer = None

    def _silent(self) -> None:
        self._timer = None
        context = getattr(self._connection, "context", None)
        log.info(
            "closing %s: no body byte for %.0fs",
            getattr(context, "remote_ip", "a client"),
            self._server.policy.body_timeout,
        )
        self._connection.close()  # type: ignore[attr-defined]

    # forwarded addresses ---------------------------------------------------------

    def _apply_forwarded(self, headers: tornado.httputil.HTTPHeaders) -> None:
        context = getattr(self._connection, "context", None)
        peer = getattr(context, "remote_ip", None)
        if context is None or peer is None or peer not in self._server.proxies:
            return
        policy = self._server.policy
        value = headers.get(policy.forwarded_header)
        address = None
        if value is not None:
            address = forwarded_address(policy.forwarded_header, value, self._server.proxies)
        self._restore = (context.remote_ip, context.protocol)
        if address is not None:
            context.remote_ip = address
        proto = headers.get("X-Forwarded-Proto", "").strip().lower()
        if proto in ("http", "https"):
            context.protocol = proto

    def _unapply_forwarded(self) -> None:
        if self._restore is not None:
            context = getattr(self._connection, "context", None)
            context.remote_ip, context.protocol = self._restore  # type: ignore[union-attr]
            self._restore = None

    # 431 -------------------------------------------------------------------------

    def _refuse_headers(self, start_line: tornado.httputil.RequestStartLine) -> None:
        self._refused = True
        error = errors.ApiError(errors.HEADERS_TOO_LARGE)
        body = json.dumps(error.to_json()).encode()
        head = tornado.httputil.ResponseStartLine(
            "HTTP/1.1", 431, "Request Header Fields Too Large"
        )
        self._connection.set_max_body_size(self._server.policy.unauthenticated_body)  # type: ignore[attr-defined]
        self._connection.write_headers(
            head,
            tornado.httputil.HTTPHeaders(
                {
                    "Content-Type": "application/json; charset=utf-8",
                    "Content-Length": str(len(body)),
                    "Cache-Control": "no-store",
                }
            ),
            body,
        )
        self._connection.finish()
        context = getattr(self._connection, "context", None)
        tornado.log.access_log.warning(
            "431 %s %s... (%s)",
            start_line.method[:16],
            start_line.path[:64].split("?", 1)[0],
            getattr(context, "remote_ip", "?"),
        )
