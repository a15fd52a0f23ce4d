"""Cross-origin calls from web pages: closed unless `--cors-origins` lists them.

The mini-program is not a web page and needs no CORS. A browser page on another
origin (a web gallery, say) may call the API only when its exact origin is
configured: then its responses carry `Access-Control-Allow-Origin` for it, and
its preflight `OPTIONS` requests are answered before any handler (and before
authentication, which a preflight never carries). Every other origin gets no
`Access-Control-*` header at all, so browsers keep its pages out. Credentials
(cookies) are never allowed: the API authenticates with bearer tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tornado.httputil
import tornado.routing
import tornado.web

ALLOW_METHODS = "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = ", ".join(
    [
        "Authorization",
        "Content-Type",
        "Range",
        "If-None-Match",
        "If-Modified-Since",
        "If-Range",
        "X-Upload-Id",
        "X-Download-Id",
        "X-HTTP-Method-Override",
        "Tus-Resumable",
        "Upload-Length",
        "Upload-Offset",
        "Upload-Metadata",
        "Upload-Checksum",
        "Upload-Defer-Length",
    ]
)
EXPOSE_HEADERS = ", ".join(
    [
        "Content-Disposition",
        "Content-Range",
        "Accept-Ranges",
        "ETag",
        "Location",
        "Retry-After",
        "WWW-Authenticate",
        "Tus-Resumable",
        "Tus-Version",
        "Tus-Extension",
        "Tus-Max-Size",
        "Tus-Checksum-Algorithm",
        "Upload-Offset",
        "Upload-Length",
        "Upload-Expires",
        "Upload-Metadata",
        "Tubei-Image-Id",
        "Tubei-Duplicate",
    ]
)
MAX_AGE = 600


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origin.lower() for origin in origins)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin.lower() in self.origins

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an ordinary response to a request from `origin`."""
        if not self.origins:
            return {}
        # Answers differ by Origin once any origin is allowed: caches must know.
        headers = {"Vary": "Origin"}
        if origin is not None and self.allows(origin):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return headers

    def preflight_headers(self, origin: str) -> dict[str, str]:
        return {
            "Vary": "Origin",
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": str(MAX_AGE),
        }


def is_preflight(request: tornado.httputil.HTTPServerRequest) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


class PreflightMatcher(tornado.routing.Matcher):
    """Matches a preflight from an allowed origin, whatever its path."""

    def __init__(self, policy: CorsPolicy) -> None:
        self.policy = policy

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if is_preflight(request) and self.policy.allows(request.headers.get("Origin")):
            return {}
        return None


class PreflightHandler(tornado.web.RequestHandler):
    policy: CorsPolicy

    def initialize(self, policy: CorsPolicy) -> None:
        self.policy = policy

    def options(self, *args: str) -> None:
        for name, value in self.policy.preflight_headers(self.request.headers["Origin"]).items():
            self.set_header(name, value)
        self.clear_header("Content-Type")
        self.set_status(204)
        self.finish()


def preflight_rules(policy: CorsPolicy) -> list[tornado.routing.Rule]:
    """Routes to put first: none when no origin is allowed."""
    if not policy.origins:
        return []
    return [tornado.routing.Rule(PreflightMatcher(policy), PreflightHandler, {"policy": policy})]
