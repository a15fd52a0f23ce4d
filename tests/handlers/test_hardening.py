"""Bad input and bad luck: clear 4xx answers, no stack traces, nothing stored in the
clear, safe headers for any file name, and a server that keeps serving."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import urllib.parse
from typing import Any

import pytest
import tornado.iostream
import tornado.websocket
from tornado.tcpclient import TCPClient

from server.config import Settings
from server.handlers.files import content_disposition
from server.services import Services
from tests.conftest import Api, unique_jpeg
from tests.handlers.helpers import API, assert_json_error, files_in, port_of, raw_exchange


@pytest.mark.gen_test
async def test_an_unexpected_failure_is_a_500_without_a_stack_trace(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk gremlin at /srv/secret/path")

    monkeypatch.setattr(services.library, "page", broken)
    response = await api.fetch(f"{API}/images")
    assert_json_error(response, 500, "internal_error")
    text = response.body.decode()
    for leak in ("Traceback", "gremlin", "/srv/secret", "RuntimeError", 'File "'):
        assert leak not in text
    monkeypatch.undo()
    code, page = await api.json(f"{API}/images")
    assert code == 200 and page["items"] == []


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path", [f"{API}/auth/pair", f"{API}/images/check", f"{API}/auth/wechat"], ids=str
)
@pytest.mark.parametrize(
    "body",
    [
        # Deeper than any parser goes, within what a public route reads (64 KiB).
        b"[" * 30_000 + b"]" * 30_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"\xff\xfe{}",
        b"\xc3\x28",
        b"NaN",
        b"",
    ],
    ids=["deep-array", "deep-object", "bom-16", "not-utf8", "nan", "empty"],
)
async def test_bad_json_is_a_clear_400(api: Api, path: str, body: bytes) -> None:
    response = await api.fetch(path, "POST", body, {"Content-Type": "application/json"})
    if path.endswith("/wechat"):  # not configured here: that is said first
        assert_json_error(response, 404, "wechat_login_disabled")
    else:
        assert_json_error(response, 400, "invalid_json")


@pytest.mark.gen_test
async def test_lone_surrogates_in_strings_are_answered_not_crashed_on(
    anonymous: Api, services: Services
) -> None:
    raw = '{"code": "\\ud800", "device": "\\udc00"}'
    response = await anonymous.fetch(f"{API}/auth/pair", "POST", raw)
    assert_json_error(response, 401, "invalid_pairing_code")
    pairing = await services.auth.create_pairing_code("carol")
    raw = json.dumps({"code": pairing.code, "device": "\ud800phone\udfff"})
    assert "\\ud800" in raw  # sent escaped, as JSON allows
    response = await anonymous.fetch(f"{API}/auth/pair", "POST", raw)
    assert response.code == 200, response.body
    assert json.loads(response.body)["device"]["name"] == "phone"


@pytest.mark.gen_test
async def test_odd_authorization_headers_are_401(anonymous: Api, token: str) -> None:
    for header in (
        "Bearer " + "x" * 5000,
        "Bearer " + token[:-1],
        "Bearer " + token + "x",
        "Basic " + base64.b64encode(b"alice:" + token.encode()).decode(),
        "Bearer",
        "Bearer \u00e9t\u00e9",
        token,
    ):
        response = await anonymous.fetch(f"{API}/images", headers={"Authorization": header})
        assert_json_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    ok = await anonymous.fetch(f"{API}/images", headers={"Authorization": f"bearer  {token} "})
    assert ok.code == 200


@pytest.mark.gen_test
async def test_tokens_are_stored_only_as_their_digest(
    api: Api, token: str, settings: Settings, services: Services
) -> None:
    await upload_one_photo(api)
    await services.library.thumbnails.drain()  # no thumbnail half-written while we read
    stored = b"".join(path.read_bytes() for path in files_in(settings.data))
    assert token.encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored


async def upload_one_photo(api: Api) -> None:
    code, body = await api.upload([("photo", "p.jpg", unique_jpeg())])
    assert code == 200, body


@pytest.mark.parametrize(
    "name",
    [
        'a"b.jpg',
        "line\r\nSet-Cookie: x=1.jpg",
        "tab\there\x00nul\x7fdel.jpg",
        "\u2028sep\u0085nel.jpg",
        "%22;filename=evil.exe",
        "照片.jpg",
        "back\\slash.jpg",
    ],
)
def test_content_disposition_is_one_safe_header_line(name: str) -> None:
    header = content_disposition(name)
    assert header.isascii() and header.isprintable(), header
    match = re.fullmatch(r'inline; filename="([^"\\]*)"; filename\*=UTF-8\'\'([^;\s"]+)', header)
    assert match, header
    assert urllib.parse.unquote(match[2], errors="strict") == name


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.gen_test
async def test_a_file_name_with_newlines_and_quotes_is_served_safely(
    api: Api, base_url: str, token: str
) -> None:
    """Through tus metadata a name may hold anything; it reaches no header raw."""
    data = unique_jpeg()
    name = 'evil"\r\nSet-Cookie: stolen=1\r\n\r\n<html>\u2028照片.jpg'
    response = await api.fetch(
        f"{API}/uploads/",
        "POST",
        data,
        {
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"filename {b64(name)}",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert response.code == 201, response.body
    image_id = response.headers["Tubei-Image-Id"]
    code, image = await api.json(f"{API}/images/{image_id}")
    assert code == 200, image
    kept = image["filename"]
    assert "\r" not in kept and "\n" not in kept and "\u2028" not in kept
    assert kept.endswith("照片.jpg") and "Set-Cookie" in kept

    head = (
        f"GET {API}/images/{image_id}/original HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ).encode()
    raw = await raw_exchange(base_url, head)
    lines = raw.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200")
    assert not any(line.lower().startswith("set-cookie") for line in lines)
    (disposition,) = [line for line in lines if line.lower().startswith("content-disposition:")]
    exact = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert exact and urllib.parse.unquote(exact[1]) == kept


@pytest.mark.gen_test
async def test_the_server_keeps_serving_after_garbage_on_the_wire(api: Api, base_url: str) -> None:
    for garbage in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS hello
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /api/v1/auth/pair HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\r\n\r\n",
    ):
        stream = await TCPClient().connect("127.0.0.1", port_of(base_url))
        await stream.write(garbage)
        # An answer, a close, or silence: anything but a dead server.
        with contextlib.suppress(TimeoutError, tornado.iostream.StreamClosedError):
            await asyncio.wait_for(stream.read_until_close(), 0.5)
        stream.close()
    code, body = await api.json(f"{API}/health")
    assert code == 200 and body["status"] == "ok"


@pytest.mark.gen_test
async def test_tokens_in_urls_stay_out_of_the_access_log(
    api: Api, token: str, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tornado.access")
    url = base_url.replace("http://", "ws://") + f"{API}/events?token={token}"
    ws = await tornado.websocket.websocket_connect(url)
    assert await ws.read_message() is not None  # hello
    ws.close()
    await api.fetch(f"{API}/images?limit=1&token={token}&x=1")
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert any(f"{API}/events?token=*** " in line for line in lines), lines
    assert any("limit=1&token=***&x=1" in line for line in lines), lines
    assert not any(token in line for line in lines), lines
