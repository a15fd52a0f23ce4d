"""What a running server counts, in Prometheus's terms: one registry per application.

Counters of things that happen on the request path (requests, uploads) are kept here,
recorded by the handlers. Everything the services already know (the thumbnail queue,
the decoding workers, the mailboxes, the catalog's connections) is read from them when
the metrics are scraped, so a service keeps plain numbers and knows nothing of
Prometheus.

Labels are bounded by construction: a route is the pattern it was declared with (every
unmatched path is `unmatched`), a status is its class (`2xx`), a method one Tornado
serves or `other`, a transport one of three. No label carries a user, a device, a path
or a hash, so nothing here tells one family from another.

Every sample carries `process="<host>:<port>"`, so that the series of several
processes behind one proxy stay apart however they are scraped.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from .catalog.use import ReportsUse
from .services.derived_leases import LEASE_OUTCOMES
from .services.events import DROPPED_CLOSED, DROPPED_OVERFLOW, DROPPED_SUPERSEDED

if TYPE_CHECKING:
    import tornado.web

    from .services import Services
    from .services.events import LocalEventHub
    from .services.ingest import Ingested

# A `_created` series beside every counter and histogram (when it began) doubles the
# series for nothing a scrape needs: rate() copes with restarts by itself.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED = "unmatched"
TRANSPORTS = ("multipart", "tus", "seed")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DECODE_OUTCOMES = ("made", "failed", "undecodable")
MAILBOX_LOSSES = (DROPPED_SUPERSEDED, DROPPED_OVERFLOW, DROPPED_CLOSED)
# From a thumbnail served from disk (a millisecond) to a 4 GiB upload on a slow phone.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def process_name(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


@runtime_checkable
class CountsEvents(Protocol):
    """A hub's own count of what it sent on (the Redis hub: to Redis)."""

    @property
    def published(self) -> int: ...

    @property
    def mailbox_hub(self) -> LocalEventHub: ...


@runtime_checkable
class CountsDrops(Protocol):
    """A hub that loses events of its own (the Redis hub's full or broken outbox)."""

    @property
    def dropped(self) -> int: ...


class Metrics:
    def __init__(self, services: Services, process: str) -> None:
        self.process = process
        self.registry = CollectorRegistry()
        self._routes: dict[type, str] = {}
        self.request_seconds = Histogram(
            "tubei_http_request_duration_seconds",
            "Time from a request's first byte to its answer's last, by route pattern",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.uploads = Counter(
            "tubei_uploads",
            "Files ingested into a library (duplicates included), by transport",
            ["transport"],
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "tubei_upload_bytes",
            "Bytes of the files ingested (duplicates included), by transport",
            ["transport"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "tubei_upload_duplicates",
            "Files ingested whose bytes the library already held, by transport",
            ["transport"],
            registry=self.registry,
        )
        for transport in TRANSPORTS:  # every series exists from the start, at zero
            for counter in (self.uploads, self.upload_bytes, self.duplicates):
                counter.labels(transport)
        self.registry.register(_ServicesCollector(services))

    # recording ------------------------------------------------------------------

    def name_routes(self, routes: Iterable[tuple[type, str]]) -> None:
        """Which handler class serves which route pattern (each serves one)."""
        for handler_class, pattern in routes:
            self._routes.setdefault(handler_class, pattern)

    def route_of(self, handler: tornado.web.RequestHandler) -> str:
        return self._routes.get(type(handler), UNMATCHED)

    def observe(self, handler: tornado.web.RequestHandler) -> None:
        request = handler.request
        method = request.method if request.method in METHODS else "other"
        self.request_seconds.labels(
            self.route_of(handler), method, status_class(handler.get_status())
        ).observe(request.request_time())

    def ingested(self, transport: str, size: int, duplicate: bool) -> None:
        self.uploads.labels(transport).inc()
        self.upload_bytes.labels(transport).inc(size)
        if duplicate:
            self.duplicates.labels(transport).inc()

    # scraping -------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Everything, in Prometheus's text format, each sample labelled by process."""
        return generate_latest(_Labelled(self.registry, self.process))


def log_function(
    log: Callable[[tornado.web.RequestHandler], None], metrics: Metrics | None
) -> Callable[[tornado.web.RequestHandler], None]:
    """Tornado's `log_function`, also timing each request when metrics are on."""
    if metrics is None:
        return log

    def log_and_observe(handler: tornado.web.RequestHandler) -> None:
        metrics.observe(handler)
        log(handler)

    return log_and_observe


def of(application: tornado.web.Application) -> Metrics | None:
    """The application's metrics, or None when they are off."""
    metrics = application.settings.get("metrics")
    return metrics if isinstance(metrics, Metrics) else None


def count_ingested(
    application: tornado.web.Application, transport: str, ingested: Iterable[Ingested]
) -> None:
    if (metrics := of(application)) is not None:
        for one in ingested:
            metrics.ingested(transport, one.image.blob.size, one.duplicate)


def count_upload(
    application: tornado.web.Application, transport: str, size: int, duplicate: bool | None
) -> None:
    if (metrics := of(application)) is not None:
        metrics.ingested(transport, size, bool(duplicate))


class _Labelled:
    """The registry's metrics with one more label on every sample."""

    def __init__(self, registry: CollectorRegistry, process: str) -> None:
        self._registry = registry
        self._process = process

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            metric.samples = [
                sample._replace(labels={**sample.labels, "process": self._process})
                for sample in metric.samples
            ]
            yield metric


def _gauge(name: str, help: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help, value=value)


class _ServicesCollector:
    """Reads what the services count, at each scrape."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        yield from self._thumbnails()
        yield from self._events()
        yield from self._catalog()

    def _thumbnails(self) -> Iterator[Metric]:
        thumbnails = self._services.library.thumbnails
        state = thumbnails.queue_state()
        yield _gauge(
            "tubei_thumbnail_queue_depth",
            "Photos waiting in memory for their thumbnails",
            state.queued,
        )
        yield _gauge(
            "tubei_thumbnail_queue_overflowed",
            "1 while more photos wait for thumbnails in the catalog than the queue holds",
            int(state.in_catalog),
        )
        yield _gauge(
            "tubei_thumbnail_queue_lag_seconds",
            "How long the oldest photo in the queue has waited for its thumbnails",
            state.lag,
        )
        yield _gauge(
            "tubei_thumbnails_in_progress",
            "Photos taken from the queue whose thumbnails are being made",
            state.active,
        )
        attempts = CounterMetricFamily(
            "tubei_decode_attempts",
            "Decodes for thumbnails, by outcome: made, failed (worker killed, out of "
            "memory or time; tried again), undecodable (kept without thumbnails)",
            labels=["outcome"],
        )
        for outcome in DECODE_OUTCOMES:
            attempts.add_metric([outcome], thumbnails.outcomes[outcome])
        yield attempts
        leases = CounterMetricFamily(
            "tubei_derived_leases",
            "Leases on derived images shared with other processes, by outcome: taken "
            "(free), waited (another process made the image), expired (its holder ended "
            "without it: taken over)",
            labels=["outcome"],
        )
        for outcome in LEASE_OUTCOMES:
            held = thumbnails.leases
            leases.add_metric([outcome], held.outcomes[outcome] if held is not None else 0)
        yield leases
        pool = thumbnails.pool
        yield _gauge("tubei_decode_workers", "Decoding worker processes", pool.limits.workers)
        yield _gauge("tubei_decode_workers_busy", "Decoding workers running a job", pool.busy)
        yield _gauge(
            "tubei_decode_jobs_waiting",
            "Decodes waiting for a worker or for room in the decode budget",
            pool.waiting,
        )
        yield _gauge(
            "tubei_decode_budget_bytes", "Memory all decodes together may take", pool.limits.budget
        )
        yield _gauge(
            "tubei_decode_budget_in_use_bytes",
            "Memory the running decodes are expected to take",
            pool.budget_in_use,
        )

    def _events(self) -> Iterator[Metric]:
        hub = self._services.events
        if not isinstance(hub, CountsEvents):
            return
        local = hub.mailbox_hub
        yield _gauge("tubei_sockets_open", "Event sockets open on this process", local.mailboxes())
        yield CounterMetricFamily(
            "tubei_events_published",
            "Events this process published (with --events redis: sent to Redis)",
            value=hub.published,
        )
        yield CounterMetricFamily(
            "tubei_events_delivered",
            "Events put into the mailboxes of this process's sockets",
            value=local.delivered,
        )
        dropped = CounterMetricFamily(
            "tubei_events_dropped",
            "Events let go: superseded (a newer progress event of the same transfer "
            "took its place), overflow (a stalled socket's mailbox filled up and closed), "
            "closed (its socket had gone), redis (not sent: Redis full or away)",
            labels=["reason"],
        )
        for reason in MAILBOX_LOSSES:
            dropped.add_metric([reason], local.lost[reason])
        if isinstance(hub, CountsDrops):  # the local hub has no losses of its own
            dropped.add_metric(["redis"], hub.dropped)
        yield dropped

    def _catalog(self) -> Iterator[Metric]:
        catalog = self._services.catalog
        if not isinstance(catalog, ReportsUse):
            return
        use = catalog.use()
        yield _gauge("tubei_catalog_connections", "Connections the catalog holds", use.size)
        yield _gauge(
            "tubei_catalog_connections_in_use", "Catalog connections running a query", use.in_use
        )
        yield _gauge(
            "tubei_catalog_queries_waiting", "Catalog queries waiting for a connection", use.waiting
        )
