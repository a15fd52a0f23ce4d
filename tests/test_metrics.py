"""The metrics object: a registry per application, labels bounded, services read at scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import prometheus_client
import pytest
import tornado.ioloop
from prometheus_client.parser import text_string_to_metric_families

from server.app import make_app
from server.config import Settings
from server.handlers.metrics import is_loopback
from server.metrics import Metrics, of, status_class
from server.services import Services, build_services
from server.services.events_redis import RedisEventHub
from tests import redis_server
from tests.conftest import CLOSE_TIMEOUT, close_within


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def two(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> Iterator[list[tuple[Settings, Services]]]:
    built = []
    for n, port in enumerate((8001, 8002)):
        settings = Settings(data=tmp_path / f"data{n}", port=port, metrics=True)
        built.append((settings, build_services(settings)))
    yield built
    for _, services in built:
        close_within(io_loop, services, CLOSE_TIMEOUT)


def test_two_apps_in_one_process_count_apart(two: list[tuple[Settings, Services]]) -> None:
    first, second = (of(make_app(settings, services)) for settings, services in two)
    assert first is not None and second is not None
    first.ingested("tus", 1000, duplicate=True)
    one, other = samples(first), samples(second)
    tus = frozenset({("transport", "tus"), ("process", first.process)})
    assert one["tubei_uploads_total", tus] == 1
    assert one["tubei_upload_duplicates_total", tus] == 1
    assert first.process.endswith(":8001") and second.process.endswith(":8002")
    tus_other = frozenset({("transport", "tus"), ("process", second.process)})
    assert other["tubei_uploads_total", tus_other] == 0
    # Nothing is registered in the library's global registry.
    assert "tubei_uploads" not in prometheus_client.generate_latest().decode()


def test_metrics_are_off_unless_asked_for(two: list[tuple[Settings, Services]]) -> None:
    settings, services = two[0]
    off = Settings(data=settings.data)
    assert of(make_app(off, services)) is None


@pytest.mark.gen_test
async def test_queue_depth_and_lag_follow_what_waits(
    two: list[tuple[Settings, Services]],
) -> None:
    settings, services = two[0]
    metrics = of(make_app(settings, services))
    assert metrics is not None
    thumbnails = services.library.thumbnails
    thumbnails._enqueue("ab" * 32)  # queued, with no worker started to take it
    await asyncio.sleep(0.05)
    after = samples(metrics)
    process = ("process", metrics.process)
    assert after["tubei_thumbnail_queue_depth", frozenset({process})] == 1
    assert after["tubei_thumbnail_queue_lag_seconds", frozenset({process})] >= 0.05
    thumbnails._queue.clear()


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (101, "1xx"),
        (200, "2xx"),
        (204, "2xx"),
        (304, "3xx"),
        (423, "4xx"),
        (507, "5xx"),
        (0, "other"),
    ],
)
def test_status_classes(status: int, label: str) -> None:
    assert status_class(status) == label


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.168.1.2") and not is_loopback("::ffff:10.0.0.1")
    assert not is_loopback("unknown") and not is_loopback("")


@pytest.mark.gen_test(timeout=30)
async def test_with_redis_events_the_mailboxes_and_the_outbox_are_counted(
    two: list[tuple[Settings, Services]],
) -> None:
    redis_server.needs_shared_redis()
    settings, services = two[0]
    hub = RedisEventHub(redis_server.SHARED_URL, prefix=redis_server.unique_prefix())
    services.events = hub
    metrics = of(make_app(settings, services))
    assert metrics is not None
    await hub.start()
    try:
        mailbox = hub.subscribe(7)
        await hub.subscribed(7)
        hub.publish(7, {"type": "image.deleted", "id": "x"})
        assert await hub.flush()
        assert (await mailbox.get() or {}).get("id") == "x"
        found = samples(metrics)
    finally:
        await hub.close()
    process = ("process", metrics.process)
    assert found["tubei_events_published_total", frozenset({process})] == 1  # sent to Redis
    assert found["tubei_events_delivered_total", frozenset({process})] == 1
    assert found["tubei_sockets_open", frozenset({process})] == 1
    assert found["tubei_events_dropped_total", frozenset({process, ("reason", "redis")})] == 0
