"""`GET /metrics`: the metrics in Prometheus's text format, when `--metrics` is on.

On the main port the answer goes to loopback callers only (as the server sees them:
behind a proxy with --trust-forwarded, the address the proxy forwarded) and everyone
else gets the same 404 as with metrics off; with `--metrics-port` it is served on a
listener of its own at `--metrics-host`, to whoever can reach that.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from typing import Literal

import tornado.httpserver
import tornado.web
from tornado.routing import URLSpec

from .. import errors
from ..config import Settings
from ..metrics import CONTENT_TYPE, Metrics, of, process_name
from ..services import Services
from .base import ErrorsMixin, client_address
from .cors import PreflightHandler

log = logging.getLogger(__name__)

PATH = "/metrics"
FORWARDING_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "Forwarded")


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def route_name(spec: URLSpec) -> str:
    """`/api/v1/images/([^/]+)/original$` -> `/api/v1/images/{id}/original`."""
    pattern = spec.regex.pattern.removesuffix("$")
    return re.sub(r"\(\[\^/\]\+\)", "{id}", pattern).replace("/?", "/")


class MetricsHandler(ErrorsMixin):
    def initialize(self, metrics: Metrics, loopback_only: bool, trust_forwarded: bool) -> None:
        self.metrics = metrics
        self.loopback_only = loopback_only
        self.trust_forwarded = trust_forwarded

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")

    def from_loopback(self) -> bool:
        """Called from this machine, and not through a proxy that Tubei does not trust
        (whose callers would all seem to be on the loopback)."""
        if not self.trust_forwarded and any(
            name in self.request.headers for name in FORWARDING_HEADERS
        ):
            return False
        return is_loopback(client_address(self.request))

    def get(self) -> None:
        if self.loopback_only and not self.from_loopback():
            raise errors.ApiError(errors.NOT_FOUND)
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.metrics.exposition())


def build(settings: Settings, services: Services, routes: Iterable[URLSpec]) -> Metrics | None:
    """The application's metrics (None unless --metrics), knowing its route patterns."""
    if not settings.metrics:
        return None
    metrics = Metrics(services, process_name(settings.port))
    metrics.name_routes([(spec.target, route_name(spec)) for spec in routes])
    metrics.name_routes([(PreflightHandler, "preflight"), (MetricsHandler, PATH)])
    return metrics


def routes(settings: Settings, metrics: Metrics | None) -> list[URLSpec]:
    """`/metrics` on the main port: when on, and no port of its own is set."""
    if metrics is None or settings.metrics_port:
        return []
    where = {"metrics": metrics, "loopback_only": True, "trust_forwarded": settings.trust_forwarded}
    return [tornado.web.url(PATH, MetricsHandler, where)]


def metrics_app(metrics: Metrics) -> tornado.web.Application:
    """The application of --metrics-port: /metrics and nothing else."""
    return tornado.web.Application(
        [
            tornado.web.url(
                PATH,
                MetricsHandler,
                {"metrics": metrics, "loopback_only": False, "trust_forwarded": False},
            )
        ],
        compress_response=False,
    )


def listen(
    settings: Settings, app: tornado.web.Application
) -> tornado.httpserver.HTTPServer | Literal[False] | None:
    """The --metrics-port listener: None when there is none, False when it cannot listen."""
    metrics = of(app)
    if metrics is None or not settings.metrics_port:
        return None
    server = tornado.httpserver.HTTPServer(metrics_app(metrics))
    try:
        server.listen(settings.metrics_port, settings.metrics_host)
    except OSError as error:
        log.error(
            "cannot listen on %s port %s for metrics: %s (--metrics-host, --metrics-port)",
            settings.metrics_host,
            settings.metrics_port,
            error.strerror,
        )
        return False
    log.info("metrics on http://%s:%d%s", settings.metrics_host, settings.metrics_port, PATH)
    return server
