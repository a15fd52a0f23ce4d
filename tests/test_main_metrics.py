"""`python -m server serve --metrics`, scraped over HTTP as Prometheus would."""

from __future__ import annotations

import socket
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import unique_jpeg
from tests.server_cli import cli, environment, free_port, last_line, request, serving


def parsed(body: bytes, port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> its label sets (the process, checked, left out) -> value."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("process") == f"{socket.gethostname()}:{port}", sample
            found.setdefault(sample.name, {})[tuple(sorted(labels.items()))] = sample.value
    return found


def test_serve_with_metrics_on_the_main_port(tmp_path: Path) -> None:
    port = free_port()
    flags = ["--data", str(tmp_path / "data"), "--host", "127.0.0.1", "--port", str(port)]
    made = cli("token", "--data", str(tmp_path / "data"), "--user", "erin")
    assert made.returncode == 0, made.stderr
    token = last_line(made.stdout)
    with serving(tmp_path, [*flags, "--metrics"], environment(), port) as server:
        server.upload(token, [("a", "one.jpg", unique_jpeg())])
        status, headers, body = request(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        samples = parsed(body, port)
        assert samples["tubei_uploads_total"][(("transport", "multipart"),)] == 1
        health = (("method", "GET"), ("route", "/api/v1/health"), ("status", "2xx"))
        assert samples["tubei_http_request_duration_seconds_count"][health] >= 1
        assert samples["tubei_sockets_open"][()] == 0
        assert samples["tubei_catalog_connections"][()] == 1
        assert server.stop() == 0


def test_serve_with_metrics_on_a_port_of_their_own(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    flags = ["--data", str(tmp_path / "data"), "--host", "127.0.0.1", "--port", str(port)]
    env = environment(TUBEI_METRICS="true", TUBEI_METRICS_PORT=str(metrics_port))
    with serving(tmp_path, flags, env, port) as server:
        status, _, body = request(f"http://127.0.0.1:{port}/metrics")
        assert status == 404, "not on the main port when it has a port of its own"
        status, _, body = request(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert "tubei_decode_workers" in parsed(body, port)
        assert request(f"http://127.0.0.1:{metrics_port}/api/v1/health")[0] == 404
        assert server.stop() == 0


def test_metrics_settings_that_cannot_work_stop_start_up(tmp_path: Path) -> None:
    data = ["--data", str(tmp_path / "data"), "--host", "127.0.0.1"]
    alone = cli("serve", *data, "--metrics-port", "9108")
    assert alone.returncode == 2
    assert "--metrics-port" in alone.stderr and "needs --metrics" in alone.stderr
    same = cli("serve", *data, "--port", "9108", "--metrics", "--metrics-port", "9108")
    assert same.returncode == 2 and "--metrics-port" in same.stderr
    bad = cli("serve", *data, "--metrics", "maybe")
    assert bad.returncode == 2 and "--metrics" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        run = cli(
            "serve", *data, "--port", str(free_port()), "--metrics", "--metrics-port", str(busy)
        )
    assert run.returncode == 2
    assert "for metrics" in run.stderr and "Traceback" not in run.stderr
