"""The jscode2session client against a local stand-in for WeChat, over real HTTP."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
import tornado.ioloop

from server import errors
from server.services.wechat import WeChatClient
from tests.fake_wechat import APPID, SECRET, FakeWeChat, session_key, start_fake_wechat


@pytest.fixture
def fake(io_loop: tornado.ioloop.IOLoop) -> Iterator[FakeWeChat]:
    started = start_fake_wechat()
    yield started
    io_loop.run_sync(started.stop)


def client_for(fake: FakeWeChat, secret: str = SECRET, timeout: float = 5.0) -> WeChatClient:
    return WeChatClient(APPID, secret, fake.url, timeout=timeout)


def assert_no_secrets(caplog: pytest.LogCaptureFixture, *extra: str) -> None:
    for record in caplog.records:
        text = record.getMessage()
        for secret in (SECRET, *extra):
            assert secret not in text, text


@pytest.mark.gen_test
async def test_a_good_code_gives_the_openid_and_nothing_else(
    fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(fake)
    try:
        identity = await client.code_to_session("ok:mum")
    finally:
        client.close()
    assert identity.openid == "o-mum"
    assert vars(identity) == {"openid": "o-mum"}  # no session_key kept, anywhere
    assert fake.calls == [
        {
            "appid": APPID,
            "secret": SECRET,
            "js_code": "ok:mum",
            "grant_type": "authorization_code",
        }
    ]
    assert SECRET not in repr(client)
    assert_no_secrets(caplog, session_key("mum"))


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("bad", errors.INVALID_WECHAT_CODE),
        ("limit", errors.WECHAT_RATE_LIMITED),
        ("busy", errors.WECHAT_UNAVAILABLE),
        ("risky", errors.WECHAT_LOGIN_REFUSED),
        ("html", errors.WECHAT_UNAVAILABLE),
        ("http500", errors.WECHAT_UNAVAILABLE),
        ("huge", errors.WECHAT_UNAVAILABLE),
        ("noopenid", errors.WECHAT_UNAVAILABLE),
    ],
)
async def test_what_wechat_says_becomes_a_clear_error(
    fake: FakeWeChat, caplog: pytest.LogCaptureFixture, code: str, kind: errors.ErrorKind
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(fake)
    try:
        with pytest.raises(errors.ApiError) as raised:
            await client.code_to_session(code)
    finally:
        client.close()
    assert raised.value.kind is kind
    assert len(fake.calls) == 1
    if kind is errors.WECHAT_RATE_LIMITED:
        assert raised.value.status == 429 and raised.value.retry_after == 60
    assert_no_secrets(caplog, session_key("none"))


@pytest.mark.gen_test
async def test_a_code_works_once(fake: FakeWeChat) -> None:
    client = client_for(fake)
    try:
        assert (await client.code_to_session("ok:dad")).openid == "o-dad"
        with pytest.raises(errors.ApiError) as raised:
            await client.code_to_session("ok:dad")  # WeChat answers 40163
    finally:
        client.close()
    assert raised.value.kind is errors.INVALID_WECHAT_CODE
    assert raised.value.status == 401


@pytest.mark.gen_test
async def test_a_wrong_secret_is_the_servers_fault_and_is_logged_without_it(
    fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-2b7d-also-never-shown"
    client = client_for(fake, secret=wrong)
    try:
        with pytest.raises(errors.ApiError) as raised:
            await client.code_to_session("ok:mum")
    finally:
        client.close()
    assert raised.value.kind is errors.WECHAT_UNAVAILABLE
    assert fake.calls[0]["secret"] == wrong
    errors_logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("40125" in message for message in errors_logged), errors_logged
    assert_no_secrets(caplog, wrong)


@pytest.mark.gen_test(timeout=10)
async def test_a_slow_wechat_times_out(fake: FakeWeChat, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.slow_seconds = 3.0
    client = client_for(fake, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(errors.ApiError) as raised:
            await client.code_to_session("slow")
    finally:
        client.close()
    assert raised.value.kind is errors.WECHAT_UNAVAILABLE
    assert time.monotonic() - started < 2.0
    assert_no_secrets(caplog)


@pytest.mark.gen_test
async def test_an_unreachable_wechat_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = WeChatClient(APPID, SECRET, f"http://127.0.0.1:{port}", timeout=2.0)
    try:
        with pytest.raises(errors.ApiError) as raised:
            await client.code_to_session("ok:mum")
    finally:
        client.close()
    assert raised.value.kind is errors.WECHAT_UNAVAILABLE
    assert raised.value.status == 502
    assert_no_secrets(caplog)


@pytest.mark.gen_test
@pytest.mark.parametrize("code", ["", "two words", "x" * 300, "码", "tab\there", "nl\n"])
async def test_codes_that_cannot_be_codes_never_reach_wechat(fake: FakeWeChat, code: str) -> None:
    client = client_for(fake)
    try:
        with pytest.raises(errors.ApiError) as raised:
            await client.code_to_session(code)
    finally:
        client.close()
    assert raised.value.kind is errors.INVALID_WECHAT_CODE
    assert fake.calls == []
