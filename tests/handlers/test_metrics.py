"""`GET /metrics` on the main port: off by default, and each series moving with its event."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpserver
import tornado.ioloop
import tornado.web
import tornado.websocket
from prometheus_client.parser import text_string_to_metric_families

from server import serving
from server.config import Settings
from server.services import Services
from server.services.events import MAX_PENDING_FINAL
from tests.conftest import Api, unique_jpeg
from tests.handlers.helpers import API, sha256, upload_one
from tests.handlers.test_seed import SEED
from tests.handlers.tus_client import head, new_upload, patch, picture, send_all

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Metrics on, unless a test asks otherwise with indirect parametrization."""
    overrides: dict[str, Any] = {"metrics": True, **getattr(request, "param", {})}
    return Settings(data=tmp_path / "data", gc_interval=3600, **overrides)


@pytest.fixture
def http_server(
    app: tornado.web.Application,
    settings: Settings,
    io_loop: tornado.ioloop.IOLoop,
    _unused_port: tuple[socket.socket, int],
) -> Iterator[tornado.httpserver.HTTPServer]:
    """The server as `serve` makes it, so that --trust-forwarded applies."""
    server = serving.http_server(settings, app)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()


async def scrape(api: Api, **headers: str) -> Samples:
    response = await api.fetch("/metrics", headers=headers)
    assert response.code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("process").endswith(":8000"), sample
            samples[sample.name, frozenset(labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (each, labels) in samples if each == name]


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"metrics": False}], indirect=True)
async def test_off_by_default_as_if_there_were_no_such_path(api: Api) -> None:
    assert Settings().metrics is False
    response = await api.fetch("/metrics")
    assert response.code == 404
    assert b'"not_found"' in response.body


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"trust_forwarded": True}], indirect=True)
async def test_on_the_main_port_only_loopback_callers_are_answered(api: Api) -> None:
    await scrape(api)
    await scrape(api, **{"X-Forwarded-For": "127.0.0.1"})
    for stranger in ("203.0.113.9", "192.168.1.20", "::ffff:10.0.0.1"):
        response = await api.fetch("/metrics", headers={"X-Forwarded-For": stranger})
        assert response.code == 404, stranger
        assert b"tubei_" not in response.body


@pytest.mark.gen_test
async def test_through_a_proxy_tubei_does_not_trust_nobody_is_answered(api: Api) -> None:
    # Without --trust-forwarded, a proxy's callers would all seem to be on the loopback.
    for header in ("X-Forwarded-For", "X-Real-Ip", "Forwarded"):
        response = await api.fetch("/metrics", headers={header: "127.0.0.1"})
        assert response.code == 404, header
    await scrape(api)


@pytest.mark.gen_test
async def test_no_label_names_a_user_a_path_or_a_hash(api: Api) -> None:
    data = unique_jpeg()
    await upload_one(api, data)
    await api.fetch(f"{API}/images/{sha256(data)}")
    body = (await api.fetch("/metrics")).body.decode()
    assert sha256(data) not in body and "alice" not in body and str(api.token) not in body


@pytest.mark.gen_test(timeout=30)
async def test_uploads_bytes_and_duplicates_by_transport(api: Api) -> None:
    before = await scrape(api)
    jpeg = unique_jpeg()
    await upload_one(api, jpeg)
    await upload_one(api, jpeg)  # the same bytes again: a duplicate
    tus = picture()
    await send_all(api, await new_upload(api, tus), tus)
    code, seeded = await api.upload([("test", "tmp.jpg", seed := unique_jpeg())], path=SEED)
    assert code == 200, seeded
    after = await scrape(api)

    def moved(name: str, transport: str) -> float:
        return value(after, name, transport=transport) - value(before, name, transport=transport)

    assert moved("tubei_uploads_total", "multipart") == 2
    assert moved("tubei_upload_bytes_total", "multipart") == 2 * len(jpeg)
    assert moved("tubei_upload_duplicates_total", "multipart") == 1
    assert moved("tubei_uploads_total", "tus") == 1
    assert moved("tubei_upload_bytes_total", "tus") == len(tus)
    assert moved("tubei_upload_duplicates_total", "tus") == 0
    assert moved("tubei_uploads_total", "seed") == 1
    assert moved("tubei_upload_bytes_total", "seed") == len(seed)
    # A tus upload asked about again (HEAD, an empty PATCH at its end) is not counted twice.
    url = await new_upload(api, tus)
    await send_all(api, url, tus)
    assert (await head(api, url)).code == 200
    assert (await patch(api, url, len(tus), b"")).code == 204
    again = await scrape(api)
    assert value(again, "tubei_uploads_total", transport="tus") == 2
    assert value(again, "tubei_upload_duplicates_total", transport="tus") == 1


@pytest.mark.gen_test
async def test_request_latency_is_recorded_under_the_route_pattern(api: Api) -> None:
    data = unique_jpeg()
    await upload_one(api, data)
    for _ in range(3):
        assert (await api.fetch(f"{API}/images/{sha256(data)}")).code == 200
    assert (await api.fetch(f"{API}/images/{'0' * 64}")).code == 404
    samples = await scrape(api)
    route = "/api/v1/images/{id}"
    count = "tubei_http_request_duration_seconds_count"
    assert value(samples, count, route=route, method="GET", status="2xx") == 3
    assert value(samples, count, route=route, method="GET", status="4xx") == 1
    assert value(samples, count, route="/api/v1/images", method="POST", status="2xx") == 1
    total = "tubei_http_request_duration_seconds_sum"
    assert value(samples, total, route=route, method="GET", status="2xx") > 0
    routes = {labels["route"] for labels in series(samples, count)}
    assert all(r.startswith("/api/v1/") or r in ("/metrics", "unmatched") for r in routes)


@pytest.mark.gen_test(timeout=30)
async def test_unknown_paths_and_methods_share_one_series_each(api: Api) -> None:
    for n in range(100):
        assert (await api.fetch(f"{API}/no/such/{n}/path-{n * 7919}")).code == 404
    await api.fetch(f"{API}/images", "BREW")
    samples = await scrape(api)
    count = "tubei_http_request_duration_seconds_count"
    unmatched = [labels for labels in series(samples, count) if labels["route"] == "unmatched"]
    assert unmatched == [{"route": "unmatched", "method": "GET", "status": "4xx"}]
    assert value(samples, count, route="unmatched", method="GET", status="4xx") == 100
    assert value(samples, count, route="/api/v1/images", method="other", status="4xx") == 1
    assert len(series(samples, count)) <= 5, series(samples, count)


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"web": Path("/nonexistent/web-dist")}], indirect=True)
async def test_the_web_apps_deep_links_share_one_series(api: Api) -> None:
    for path in ("/", "/trash", "/a/deep/link"):
        assert (await api.fetch(path)).code == 503  # not built: the page saying so
    samples = await scrape(api)
    count = "tubei_http_request_duration_seconds_count"
    assert value(samples, count, route="/ (web app)", method="GET", status="5xx") == 3
    assert (await api.fetch("/assets/x-1234.js")).code == 404
    samples = await scrape(api)
    assert value(samples, count, route="/assets/{name}", method="GET", status="4xx") == 1


@pytest.mark.gen_test(timeout=30)
async def test_sockets_open_and_closed(api: Api, base_url: str, token: str) -> None:
    assert value(await scrape(api), "tubei_sockets_open") == 0
    url = base_url.replace("http://", "ws://") + f"{API}/events?token={token}"
    sockets = [await tornado.websocket.websocket_connect(url) for _ in range(2)]
    for ws in sockets:
        assert '"hello"' in str(await ws.read_message())
    assert value(await scrape(api), "tubei_sockets_open") == 2
    sockets.pop().close()
    for _ in range(200):
        if value(await scrape(api), "tubei_sockets_open") == 1:
            break
        await asyncio.sleep(0.02)
    assert value(await scrape(api), "tubei_sockets_open") == 1
    sockets.pop().close()


@pytest.mark.gen_test(timeout=60)
async def test_a_thumbnail_made_and_the_queue_drained(api: Api, services: Services) -> None:
    before = await scrape(api)
    await upload_one(api, unique_jpeg((640, 480)))
    await services.library.thumbnails.drain()
    after = await scrape(api)
    made = "tubei_decode_attempts_total"
    assert value(after, made, outcome="made") == value(before, made, outcome="made") + 1
    assert value(after, made, outcome="failed") == 0
    assert value(after, "tubei_thumbnail_queue_depth") == 0
    assert value(after, "tubei_thumbnail_queue_lag_seconds") == 0
    assert value(after, "tubei_decode_workers") == services.settings.decode_workers
    assert value(after, "tubei_decode_workers_busy") == 0
    assert value(after, "tubei_decode_budget_bytes") == services.settings.decode_budget


@pytest.mark.gen_test(timeout=30)
async def test_events_dropped_by_a_stalled_mailbox(api: Api, services: Services) -> None:
    user = await services.auth.authenticate(api.token or "")
    assert user is not None
    user_id = user[0].id
    before = await scrape(api)
    stalled = services.events.subscribe(user_id)  # a subscriber that never reads
    for received in range(5):  # progress of one transfer: the newest replaces the others
        services.events.publish(
            user_id, {"type": "upload.progress", "upload_id": "u1", "received": received}
        )
    for n in range(MAX_PENDING_FINAL + 1):  # final events past what a mailbox keeps
        services.events.publish(user_id, {"type": "image.deleted", "id": str(n)})
    after = await scrape(api)
    services.events.unsubscribe(user_id, stalled)
    dropped = "tubei_events_dropped_total"
    assert (
        value(after, dropped, reason="superseded") - value(before, dropped, reason="superseded")
        == 4
    )
    assert value(after, dropped, reason="overflow") - value(before, dropped, reason="overflow") == 1
    delivered = value(after, "tubei_events_delivered_total")
    # The progress event holds one of the mailbox's places: the 1000th final event
    # overflows it (and closes it), the 1001st finds it closed.
    assert delivered - value(before, "tubei_events_delivered_total") == 5 + MAX_PENDING_FINAL - 1
    assert value(after, dropped, reason="closed") - value(before, dropped, reason="closed") == 1
    published = value(after, "tubei_events_published_total")
    assert published - value(before, "tubei_events_published_total") == 5 + MAX_PENDING_FINAL + 1
    assert stalled.overflowed


@pytest.mark.gen_test
async def test_the_catalog_reports_its_connection(api: Api) -> None:
    samples = await scrape(api)
    assert value(samples, "tubei_catalog_connections") == 1
    assert value(samples, "tubei_catalog_connections_in_use") in (0, 1)
    assert value(samples, "tubei_catalog_queries_waiting") >= 0
