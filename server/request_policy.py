"""One request under the server's policy, in front of the application's delegate:
the 431 for a header block over the limit, the body limit before authentication,
the idle-body timer, and the client's address from a trusted proxy's header."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import tornado.httputil
import tornado.log
from tornado.ioloop import IOLoop

from . import errors
from .lingering import LingeringSocket

if TYPE_CHECKING:
    from .connections import LimitedHTTPServer, Proxies

log = logging.getLogger(__name__)


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
        self._timer_loop: IOLoop | None = None  # the loop the timer is on
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
        announced = (
            headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in headers
        )
        if announced:
            # Until it has all been read, closing must not reset the client still sending it.
            self._body_expected(True)
        if prepared is not None:
            await prepared
        if announced:
            self._arm()

    def _body_expected(self, expected: bool) -> None:
        stream = getattr(self._connection, "stream", None)
        connection = getattr(stream, "socket", None)
        if isinstance(connection, LingeringSocket):
            connection.body_expected = expected

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
        self._body_expected(False)  # the whole body has been read
        self._disarm()
        self._unapply_forwarded()
        if not self._refused:
            self._inner.finish()

    def on_connection_close(self) -> None:
        self._disarm()
        self._unapply_forwarded()
        if not self._refused:
            self._inner.on_connection_close()

    def connection_closed(self) -> None:
        """The connection is gone (Tornado tells the delegate only in some cases)."""
        self._disarm()

    # the body's idle timeout -----------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        loop = self._timer_loop = IOLoop.current()
        self._timer = loop.call_later(self._server.policy.body_timeout, self._silent)

    def _disarm(self) -> None:
        # On the timer's own loop: a connection closed while its loop shuts down is told
        # so with no loop current, where IOLoop.current() would make (and leak) a new one.
        if self._timer is not None and self._timer_loop is not None:
            self._timer_loop.remove_timeout(self._timer)
        self._timer = self._timer_loop = None

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
