"""`POST /api/v1/auth/wechat` against a local stand-in for WeChat, over real sockets."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.ioloop

from server.config import Settings
from server.services import Services
from server.services.auth import WECHAT_ATTEMPTS
from tests.conftest import Api, unique_jpeg
from tests.fake_wechat import APPID, SECRET, FakeWeChat, session_key, start_fake_wechat
from tests.handlers.helpers import API, assert_json_error, files_in, upload_one

LOGIN = f"{API}/auth/wechat"


@pytest.fixture
def wechat(io_loop: tornado.ioloop.IOLoop) -> Iterator[FakeWeChat]:
    fake = start_fake_wechat()
    yield fake
    io_loop.run_sync(fake.stop)


@pytest.fixture
def settings(tmp_path: Path, wechat: FakeWeChat) -> Settings:
    return Settings(
        data=tmp_path / "data",
        gc_interval=3600,
        wechat_appid=APPID,
        wechat_secret=SECRET,
        wechat_api=wechat.url,
    )


async def login(anonymous: Api, body: Any) -> tuple[int, Any, dict[str, str]]:
    raw = body if isinstance(body, str) else json.dumps(body)
    response = await anonymous.fetch(LOGIN, "POST", raw, {"Content-Type": "application/json"})
    text = response.body.decode()
    for secret in (SECRET, "SESSION-KEY"):
        assert secret not in text
        assert all(secret not in value for value in response.headers.values())
    return response.code, json.loads(text), dict(response.headers)


@pytest.mark.gen_test
async def test_the_methods_say_wechat_is_on(anonymous: Api) -> None:
    code, body = await anonymous.json(f"{API}/auth/methods")
    assert (code, body) == (200, {"pair": True, "wechat": True})


@pytest.mark.gen_test
async def test_a_wechat_account_is_one_user_across_logins(
    anonymous: Api, settings: Settings, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, first, _ = await login(anonymous, {"code": "ok:mum", "device": "Mum's iPhone"})
    assert status == 200, first
    assert set(first) == {"token", "user", "device"}
    assert re.fullmatch(r"wx-[0-9a-f]{8}", first["user"]["name"]), first
    assert first["device"]["name"] == "Mum's iPhone"

    mum = Api(anonymous.client, anonymous.base_url, first["token"])
    photo = await upload_one(mum, unique_jpeg())

    status, again, _ = await login(anonymous, {"code": "ok:mum#2", "device": "Mum's iPad"})
    assert status == 200, again
    assert again["user"] == first["user"]
    assert again["device"]["id"] != first["device"]["id"]
    ipad = Api(anonymous.client, anonymous.base_url, again["token"])
    code, page = await ipad.json(f"{API}/images")
    assert [i["id"] for i in page["items"]] == [photo["id"]]
    code, devices = await ipad.json(f"{API}/devices")
    assert [d["name"] for d in devices["items"]] == ["Mum's iPhone", "Mum's iPad"]

    # Another account is another user, who sees nothing of mum's.
    status, dad, _ = await login(anonymous, {"code": "ok:dad"})
    assert status == 200, dad
    assert dad["user"]["id"] != first["user"]["id"]
    dad_api = Api(anonymous.client, anonymous.base_url, dad["token"])
    code, page = await dad_api.json(f"{API}/images")
    assert code == 200 and page["items"] == []
    assert (await dad_api.fetch(f"{API}/images/{photo['id']}/original")).code == 404

    # The session_key is not kept anywhere: not in the catalog (nor its WAL), not in
    # the logs. The openid is, to find the user again.
    await services.library.thumbnails.drain()  # no thumbnail half-written while we read
    stored = b"".join(path.read_bytes() for path in files_in(settings.data))
    assert b"o-mum" in stored
    for path in files_in(settings.data):
        data = path.read_bytes()
        for name in ("mum", "dad"):
            assert session_key(name).encode() not in data, path
        assert SECRET.encode() not in data, path
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert "SESSION-KEY" not in record.getMessage()
    assert SECRET not in repr(settings)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("bad", 401, "invalid_wechat_code"),
        ("limit", 429, "wechat_rate_limited"),
        ("busy", 502, "wechat_unavailable"),
        ("html", 502, "wechat_unavailable"),
        ("risky", 403, "wechat_login_refused"),
    ],
)
async def test_wechat_errors_become_clear_answers(
    anonymous: Api, wechat: FakeWeChat, code: str, status: int, error: str
) -> None:
    answer, body, headers = await login(anonymous, {"code": code, "device": "phone"})
    assert_json_error_body(answer, body, status, error)
    if status == 429:
        assert headers["Retry-After"] == "60"
    assert len(wechat.calls) == 1


def assert_json_error_body(status: int, body: Any, expected: int, error: str) -> None:
    assert status == expected, body
    assert set(body) == {"error"} and body["error"]["code"] == error, body
    assert body["error"]["message"]


@pytest.mark.gen_test
async def test_a_used_code_is_refused(anonymous: Api) -> None:
    status, body, _ = await login(anonymous, {"code": "ok:once"})
    assert status == 200
    status, body, _ = await login(anonymous, {"code": "ok:once"})
    assert_json_error_body(status, body, 401, "invalid_wechat_code")


@pytest.mark.gen_test
async def test_wechat_down_is_502_and_the_server_carries_on(
    anonymous: Api, wechat: FakeWeChat
) -> None:
    await wechat.stop()
    status, body, _ = await login(anonymous, {"code": "ok:mum"})
    assert_json_error_body(status, body, 502, "wechat_unavailable")
    code, health = await anonymous.json(f"{API}/health")
    assert code == 200 and health["status"] == "ok"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not json", "invalid_json"),
        ("[]", "invalid_json"),
        ({}, "invalid_argument"),
        ({"code": ""}, "invalid_argument"),
        ({"code": 123}, "invalid_argument"),
        ({"code": ["ok:mum"]}, "invalid_argument"),
        ({"code": "ok:mum", "device": {"name": "x"}}, "invalid_argument"),
    ],
    ids=repr,
)
async def test_bad_login_bodies_are_400(
    anonymous: Api, wechat: FakeWeChat, body: Any, error: str
) -> None:
    status, answer, _ = await login(anonymous, body)
    assert_json_error_body(status, answer, 400, error)
    assert wechat.calls == []


@pytest.mark.gen_test
async def test_login_attempts_are_capped_per_client(anonymous: Api, wechat: FakeWeChat) -> None:
    for _ in range(WECHAT_ATTEMPTS):
        status, body, _ = await login(anonymous, {"code": "bad"})
        assert status == 401, body
    response = await anonymous.fetch(LOGIN, "POST", json.dumps({"code": "ok:mum"}))
    assert_json_error(response, 429, "too_many_attempts")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert len(wechat.calls) == WECHAT_ATTEMPTS  # the refused one never reached WeChat
