"""The HTTP server as `serve` builds it: forwarded headers trusted only when told,
header and body limits, TLS (HTTPS and WSS) end to end, and start-up errors."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.iostream
import tornado.testing
import tornado.websocket

from server.app import make_app
from server.config import Settings
from server.services import build_services
from server.services.auth import PAIRING_ATTEMPTS
from server.serving import (
    MAX_HEADER_SIZE,
    RESERVED_FILES,
    fit_capacity,
    http_server,
    raise_open_file_limit,
)
from tests.conftest import CLOSE_TIMEOUT, close_within, multipart, unique_jpeg
from tests.fake_wechat import APPID, SECRET, FakeWeChat, start_fake_wechat
from tests.handlers.helpers import raw_exchange
from tests.serve_process import health_from
from tests.server_cli import ROOT, cli, environment, free_port, last_line

PAIR = "/api/v1/auth/pair"
Start = Callable[..., str]


@pytest.fixture
def start(io_loop: tornado.ioloop.IOLoop, tmp_path: Path) -> Iterator[Start]:
    """Start an in-process server exactly as `serve` builds it; its base URL."""
    stops: list[Callable[[], None]] = []

    def starter(**overrides: Any) -> str:
        settings = Settings(data=tmp_path / f"data{len(stops)}", **overrides)
        services = build_services(settings)
        server = http_server(settings, make_app(settings, services))
        sock, port = tornado.testing.bind_unused_port()
        server.add_sockets([sock])

        def stop() -> None:
            server.stop()
            io_loop.run_sync(server.close_all_connections)
            close_within(io_loop, services, CLOSE_TIMEOUT)

        stops.append(stop)
        return f"http://127.0.0.1:{port}"

    yield starter
    for stop in stops:
        stop()


async def guess(base_url: str, headers: dict[str, str] | None = None) -> int:
    """One wrong pairing code; the status it gets."""
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + PAIR,
        method="POST",
        body=json.dumps({"code": "000000"}),
        headers=headers or {},
        raise_error=False,
    )
    return response.code


@pytest.mark.gen_test
async def test_forwarded_headers_are_ignored_by_default(start: Start) -> None:
    base_url = start()
    for n in range(PAIRING_ATTEMPTS):
        # A client cannot dodge the throttle by claiming to be someone else.
        assert await guess(base_url, {"X-Forwarded-For": f"203.0.113.{n}"}) == 401
    assert await guess(base_url, {"X-Forwarded-For": "198.51.100.1"}) == 429
    assert await guess(base_url, {"X-Real-Ip": "198.51.100.2"}) == 429


@pytest.mark.gen_test
async def test_forwarded_headers_are_trusted_behind_a_proxy(start: Start) -> None:
    base_url = start(trust_forwarded=True)
    for _ in range(PAIRING_ATTEMPTS):
        assert await guess(base_url, {"X-Forwarded-For": "203.0.113.7"}) == 401
    assert await guess(base_url, {"X-Forwarded-For": "203.0.113.7"}) == 429
    # Behind the proxy (loopback, trusted by default), other people are other clients...
    assert await guess(base_url, {"X-Forwarded-For": "198.51.100.1"}) == 401
    # ...and the proxy's own appended address is the one that counts.
    assert await guess(base_url, {"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}) == 429
    # Only the configured header (--forwarded-header) is read: X-Real-Ip is not.
    for _ in range(PAIRING_ATTEMPTS):
        assert await guess(base_url, {"X-Real-Ip": "198.51.100.2"}) == 401
    assert await guess(base_url, {"X-Real-Ip": "198.51.100.3"}) == 429


async def assert_refused(base_url: str, head: str) -> None:
    """The server closes the connection, or answers anything but success."""
    try:
        answer = await raw_exchange(base_url, head.encode() + b"\r\n\r\n")
    except tornado.iostream.StreamClosedError:
        return
    assert not answer.startswith(b"HTTP/1.1 2"), answer


@pytest.mark.gen_test
async def test_oversized_headers_and_bodies_are_refused_and_serving_goes_on(
    start: Start,
) -> None:
    base_url = start()
    # 20 KB: over our limit, well under Tornado's default of 64 KiB.
    big = "x" * 20_000
    assert MAX_HEADER_SIZE < len(big) < 65536
    fine = f"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nX-Small: {big[:1024]}\r\n\r\n"
    assert (await raw_exchange(base_url, fine.encode())).startswith(b"HTTP/1.1 200 ")
    await assert_refused(base_url, f"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nX-Big: {big}")
    await assert_refused(base_url, f"GET /api/v1/health?{big} HTTP/1.1\r\nHost: t")
    # A JSON body over the 1 MiB cap is refused before any handler reads it.
    body = json.dumps({"code": "123456", "device": "x" * (2 * 1024 * 1024)})
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + PAIR, method="POST", body=body, raise_error=False
    )
    assert response.code in (400, 413)
    # The server is still there.
    response = await tornado.httpclient.AsyncHTTPClient().fetch(base_url + "/api/v1/health")
    assert json.loads(response.body)["status"] == "ok"


# TLS, end to end --------------------------------------------------------------------

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def wechat(io_loop: tornado.ioloop.IOLoop) -> Iterator[FakeWeChat]:
    fake = start_fake_wechat()
    yield fake
    io_loop.run_sync(fake.stop)


@dataclass
class TlsServer:
    process: subprocess.Popen[bytes]
    port: int
    cert: Path
    data: Path
    log: Path


@pytest.fixture
def tls_server(tmp_path: Path, wechat: FakeWeChat) -> Iterator[TlsServer]:
    """`serve` over TLS with WeChat login on (the secret from the environment)."""
    cert, key = self_signed(tmp_path)
    data, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    flags += ["--certfile", str(cert), "--keyfile", str(key), "--ping-interval", "0.5"]
    flags += ["--wechat-appid", APPID, "--wechat-api", wechat.url, "--log-level", "debug"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", *flags],
            cwd=ROOT,
            env=environment(TUBEI_WECHAT_SECRET=SECRET),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield TlsServer(process, port, cert, data, log)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def wait_for_health(server: TlsServer) -> None:
    client = tornado.httpclient.AsyncHTTPClient()
    url = f"https://127.0.0.1:{server.port}/api/v1/health"
    deadline = time.monotonic() + 20
    while server.process.poll() is None and time.monotonic() < deadline:
        try:
            response = await client.fetch(url, ca_certs=str(server.cert), request_timeout=2)
            if json.loads(response.body)["status"] == "ok":
                return
        except (OSError, tornado.httpclient.HTTPClientError):
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"serve did not answer /health:\n{await in_thread(server.log.read_text)}")


@needs_openssl
@pytest.mark.gen_test(timeout=90)
async def test_https_and_wss_with_wechat_login_and_a_revoke_from_the_shell(
    tls_server: TlsServer,
) -> None:
    process, port = tls_server.process, tls_server.port
    cert, data = tls_server.cert, tls_server.data
    url = f"https://127.0.0.1:{port}/api/v1"
    client = tornado.httpclient.AsyncHTTPClient()
    sockets: list[tornado.websocket.WebSocketClientConnection] = []

    async def call(path: str, method: str = "GET", body: Any = None, **kw: Any) -> Any:
        return await client.fetch(
            url + path,
            method=method,
            body=body,
            ca_certs=str(cert),
            raise_error=False,
            request_timeout=20,
            **kw,
        )

    try:
        await wait_for_health(tls_server)
        methods = json.loads((await call("/auth/methods")).body)
        assert methods == {"pair": True, "wechat": True}

        answer = await call("/auth/wechat", "POST", json.dumps({"code": "ok:mum", "device": "p"}))
        assert answer.code == 200, answer.body
        login = json.loads(answer.body)
        token, device_id = login["token"], login["device"]["id"]
        auth = {"Authorization": f"Bearer {token}"}

        events = await tornado.websocket.websocket_connect(
            tornado.httpclient.HTTPRequest(
                f"wss://127.0.0.1:{port}/api/v1/events?token={token}", ca_certs=str(cert)
            )
        )
        sockets.append(events)
        hello = json.loads(await asyncio.wait_for(events.read_message(), 10) or "null")
        assert hello == {"type": "hello", "user": login["user"]["name"]}

        photo = unique_jpeg((120, 90))
        body, content_type = multipart([("photo", "tls.jpg", photo)])
        headers = {**auth, "Content-Type": content_type, "X-Upload-Id": "over-tls"}
        uploaded = await call("/images", "POST", body, headers=headers)
        assert uploaded.code == 200, uploaded.body
        image_id = json.loads(uploaded.body)["items"][0]["id"]
        seen: list[str] = []
        while "upload.done" not in seen:
            event = json.loads(await asyncio.wait_for(events.read_message(), 10) or "null")
            seen.append(event["type"])
        original = await call(f"/images/{image_id}/original", headers=auth)
        assert original.code == 200 and original.body == photo

        # No cleartext on the TLS port.
        with pytest.raises((OSError, tornado.httpclient.HTTPClientError)):
            await client.fetch(f"http://127.0.0.1:{port}/api/v1/health", request_timeout=5)

        # The admin lists and revokes the device from the shell while the server runs.
        listing = await in_thread(cli, "devices", "--data", str(data), env=environment())
        assert listing.returncode == 0, listing.stderr
        assert f"{device_id:>6}  {login['user']['name']}" in listing.stdout
        revoked = await in_thread(cli, "revoke", "--data", str(data), str(device_id))
        assert revoked.returncode == 0, revoked.stderr
        assert f"revoked device {device_id}" in last_line(revoked.stdout)
        # Refused at once; its socket closes at the server's next check (a ping interval).
        assert (await call("/images", headers=auth)).code == 401
        started = time.monotonic()
        while (message := await asyncio.wait_for(events.read_message(), 10)) is not None:
            assert json.loads(message)["type"] != "hello"
        assert events.close_code == 4403
        assert time.monotonic() - started < 5
        again = await in_thread(cli, "revoke", "--data", str(data), str(device_id))
        assert again.returncode == 1 and "no device" in again.stderr

        process.send_signal(signal.SIGTERM)
        assert await in_thread(process.wait, timeout=15) == 0
    finally:
        for ws in sockets:
            ws.close()
    text = await in_thread(tls_server.log.read_text)
    assert f"https://127.0.0.1:{port}" in text  # it says where it serves, with https
    assert "DEBUG" in text  # the log was as verbose as it gets...
    assert SECRET not in text  # ...and the secret is not in it
    assert "SESSION-KEY" not in text
    assert "Traceback" not in text


# start-up errors ------------------------------------------------------------------


def serve_fails(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run serve with a bad configuration: it must stop at once, with a clear message."""
    run = cli(
        "serve", "--host", "127.0.0.1", "--port", str(free_port()),
        "--data", str(tmp_path / "data"), *args, env=env,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "configuration error" in run.stderr
    return run.stderr


@needs_openssl
def test_tls_needs_both_files_readable_and_right(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    for args in (["--certfile", str(cert)], ["--keyfile", str(key)]):
        message = serve_fails(tmp_path, *args)
        assert "--certfile" in message and "--keyfile" in message
    message = serve_fails(tmp_path, env=environment(TUBEI_CERTFILE=str(cert)))
    assert "TUBEI_KEYFILE" in message

    missing = tmp_path / "nope.pem"
    message = serve_fails(tmp_path, "--certfile", str(missing), "--keyfile", str(key))
    assert str(missing) in message and "cannot read" in message

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    message = serve_fails(tmp_path, "--certfile", str(garbage), "--keyfile", str(key))
    assert str(garbage) in message and "PEM" in message
    message = serve_fails(tmp_path, "--certfile", str(cert), "--keyfile", str(cert))
    assert "private key" in message

    encrypted = tmp_path / "encrypted.pem"
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-out", str(encrypted), "-aes256",
         "-passout", "pass:hunter2"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    message = serve_fails(tmp_path, "--certfile", str(cert), "--keyfile", str(encrypted))
    assert "encrypted" in message
    assert not (tmp_path / "data" / "catalog.sqlite3").exists()  # stopped before opening it


def test_wechat_login_needs_both_appid_and_secret(tmp_path: Path) -> None:
    message = serve_fails(tmp_path, "--wechat-appid", APPID)
    assert "--wechat-appid" in message and "--wechat-secret" in message
    message = serve_fails(tmp_path, env=environment(TUBEI_WECHAT_SECRET=SECRET))
    assert "TUBEI_WECHAT_APPID" in message
    assert SECRET not in message
    message = serve_fails(tmp_path, "--wechat-api", "ftp://api.weixin.qq.com")
    assert "--wechat-api" in message


def test_cors_origins_must_be_origins(tmp_path: Path) -> None:
    for bad in ("*", "https://a.example/path", "a.example", "https://a.example,javascript:x"):
        message = serve_fails(tmp_path, "--cors-origins", bad)
        assert "--cors-origins" in message


def test_the_secret_is_kept_out_of_logs_at_start_up(tmp_path: Path) -> None:
    """`serve --log-level debug` with WeChat on: the secret is in no line it writes."""
    port = free_port()
    env = environment(TUBEI_WECHAT_APPID=APPID, TUBEI_WECHAT_SECRET=SECRET)
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data", str(tmp_path / "data"), "--log-level", "debug"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # Serving (and so past its start-up logging, its SIGTERM handled): a file in the
        # data folder is not enough on a busy machine, where SIGTERM then came first.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and health_from(port, "127.0.0.1", 1.0) != 200:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert b"Tubei" in output and SECRET.encode() not in output


def test_the_connection_caps_are_fitted_under_the_open_file_limit(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, max_connections=1000, max_sockets=500)
    roomy = fit_capacity(settings, 20_000)
    assert (roomy.connections, roomy.sockets) == (1000, 500)
    tight = fit_capacity(settings, 1024)
    assert tight.connections + tight.sockets <= 1024 - RESERVED_FILES
    assert abs(tight.connections - 2 * tight.sockets) <= 2  # in proportion
    assert raise_open_file_limit() >= 1024  # soft lifted to the hard limit here
