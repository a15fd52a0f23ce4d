"""What every handler shares: JSON in and out, errors as JSON, bearer auth."""

from __future__ import annotations

import json
import logging
import urllib.parse
from types import TracebackType
from typing import Any

import tornado.log
import tornado.web

from .. import errors
from ..catalog import CatalogUnavailable, Device, User
from ..services import Services
from ..services.media_urls import UserSigner
from ..storage.home import StorageUnavailable
from .cors import CorsPolicy

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1024 * 1024


def bearer_token(request: tornado.httputil.HTTPServerRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def query_token(request: tornado.httputil.HTTPServerRequest) -> str | None:
    """The documented `?token=`, spelt exactly so; None if the URL carries a token any
    other way (`?%74oken=`, `?TOKEN=`, twice...), which is then no token at all."""
    found: list[str] = []
    for part in request.query.split("&"):
        name, _, value = part.partition("=")
        if urllib.parse.unquote_plus(name).lower() == "token":
            if name != "token":
                return None
            found.append(urllib.parse.unquote_plus(value))
    return found[0] if len(found) == 1 else None


def blank_tokens(uri: str) -> str:
    """`uri` with the value of every query parameter named token, or a signed media
    URL's signature (a credential until it expires), however its name is encoded,
    replaced by `***`."""
    path, mark, query = uri.partition("?")
    if not mark:
        return uri
    query, hash_mark, fragment = query.partition("#")
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        plain = urllib.parse.unquote_plus(name).lower()
        if equals and ("token" in plain or "signature" in plain):
            part = f"{name}=***"
        parts.append(part)
    return f"{path}?{'&'.join(parts)}{hash_mark}{fragment}"


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, with any token in the query (the events socket's
    `?token=`, or one spelt otherwise) blanked out."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    uri = blank_tokens(request.uri or "")
    tornado.log.access_log.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        uri,
        request.remote_ip,
        1000.0 * request.request_time(),
    )


def client_address(request: tornado.httputil.HTTPServerRequest) -> str:
    """The caller's IP: the peer's, or, with --trust-forwarded and a peer among
    --trusted-proxies, what --forwarded-header says (see server/request_policy.py)."""
    return request.remote_ip or "unknown"


class ErrorsMixin(tornado.web.RequestHandler):
    """Every error leaves as `{"error": {"code", "message"}}`, never a stack trace."""

    def clear(self) -> None:
        # Runs when the handler is made and again before an error is written, and
        # so puts the CORS headers on every answer, errors included, whatever a
        # subclass does with set_default_headers.
        super().clear()
        cors = self.application.settings.get("cors")
        if isinstance(cors, CorsPolicy):
            for name, value in cors.response_headers(self.request.headers.get("Origin")).items():
                self.set_header(name, value)

    def error_body(self, error: errors.ApiError) -> dict[str, Any]:
        return error.to_json()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        value = exc_info[1] if exc_info else None
        if isinstance(value, errors.ApiError):
            error = value
        elif isinstance(value, CatalogUnavailable):
            error = errors.ApiError(errors.BACKEND_UNAVAILABLE, retry_after=value.retry_after)
        elif isinstance(value, StorageUnavailable):
            error = errors.ApiError(errors.STORAGE_UNAVAILABLE, retry_after=value.retry_after)
        elif isinstance(value, tornado.web.HTTPError):
            error = errors.ApiError(errors.for_status(value.status_code))
        else:
            error = errors.ApiError(errors.for_status(status_code))
        self.set_status(error.status)
        if error.status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="tubei"')
        if error.retry_after is not None:
            self.set_header("Retry-After", str(error.retry_after))
        if error.status == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(self.error_body(error), ensure_ascii=False))

    def allowed_methods(self) -> list[str]:
        """The methods this handler implements (a 405 must list them)."""
        base = tornado.web.RequestHandler
        return [
            method
            for method in self.SUPPORTED_METHODS
            if getattr(type(self), method.lower(), None) is not getattr(base, method.lower())
        ]

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, (CatalogUnavailable, StorageUnavailable)):
            log.warning("%s %s: %s", self.request.method, self.request.uri, value)
            return
        if isinstance(value, errors.ApiError):
            if value.status >= 500:
                log.error("%s %s: %s", self.request.method, self.request.uri, value.message)
            return
        super().log_exception(typ, value, tb)


@tornado.web.stream_request_body
class ApiHandler(ErrorsMixin):
    """A JSON API handler; authenticated unless `public` is set.

    Every handler streams its body, so that `prepare` (who is calling) runs before
    any of it is read: a stranger, or a public route, may send at most
    --max-unauthenticated-body; a caller with a valid token up to `max_body`. A
    request refused in `prepare` (401, 404...) reads nothing into memory.
    """

    public = False
    max_body = MAX_JSON_BODY
    services: Services
    user: User
    device: Device
    _body: bytearray
    _body_limit: int

    def initialize(self, services: Services) -> None:
        self.services = services
        self._body = bytearray()
        self._body_limit = services.settings.max_unauthenticated_body

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    async def prepare(self) -> None:
        if not self.public:
            await self.authenticate()
            self.limit_body(self.authenticated_body_limit())
        self.refuse_declared_excess()

    def authenticated_body_limit(self) -> int:
        return self.max_body

    def limit_body(self, size: int) -> None:
        """The most this request's body may be (Tornado cuts the connection past it)."""
        self._body_limit = size
        self.request.connection.set_max_body_size(size)  # type: ignore[union-attr]

    def refuse_declared_excess(self) -> None:
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self._body_limit:
            raise errors.ApiError(
                errors.PAYLOAD_TOO_LARGE,
                f"The request body may be at most {self._body_limit} bytes here.",
            )

    async def data_received(self, chunk: bytes) -> None:
        # Tornado stops a body past the connection's limit (set_max_body_size) before
        # it gets here: the check only guards that promise.
        if self._finished or len(self._body) + len(chunk) > self._body_limit:
            return
        self._body += chunk

    async def authenticate(self) -> None:
        token = bearer_token(self.request)
        found = await self.services.auth.authenticate(token) if token else None
        if found is None:
            raise errors.ApiError(errors.UNAUTHORIZED)
        self.user, self.device = found

    async def signer(self) -> UserSigner:
        """Signs the media URLs of the caller's images (see views.image_json)."""
        return await self.services.media_urls.signer(self.user.id)

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body, ensure_ascii=False))

    def json_body(self) -> dict[str, Any]:
        if len(self._body) > MAX_JSON_BODY:
            raise errors.ApiError(errors.PAYLOAD_TOO_LARGE)
        try:
            body = json.loads(bytes(self._body) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise errors.ApiError(errors.INVALID_JSON) from None
        except RecursionError:  # `[[[[...]]]]` nested deeper than the parser goes
            raise errors.ApiError(errors.INVALID_JSON, "The JSON is nested too deeply.") from None
        if not isinstance(body, dict):
            raise errors.ApiError(errors.INVALID_JSON, "The request body must be a JSON object.")
        return body

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise errors.ApiError(
                errors.INVALID_ARGUMENT, f"{name} must be a whole number from {low} to {high}."
            )
        return value


class NotFoundHandler(ApiHandler):
    public = True

    async def prepare(self) -> None:
        raise errors.ApiError(errors.NOT_FOUND)
