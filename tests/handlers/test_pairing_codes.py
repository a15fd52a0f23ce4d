"""`POST /api/v1/auth/pairing-codes`: a signed-in device makes a code that signs a
browser in as the same user; over real sockets."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from server.services.auth import PAIRING_CODES_PER_USER, PAIRING_TTL
from tests.conftest import Api
from tests.handlers.helpers import assert_json_error

CODES = "/api/v1/auth/pairing-codes"


async def new_code(api: Api) -> tuple[int, dict[str, object]]:
    response = await api.fetch(CODES, "POST", b"")
    return response.code, json.loads(response.body)


@pytest.mark.gen_test
async def test_a_code_signs_a_browser_in_as_the_same_user(api: Api, anonymous: Api) -> None:
    code, body = await new_code(api)
    assert code == 201, body
    assert isinstance(body["code"], str) and len(body["code"]) == 6 and body["code"].isdigit()
    assert body["user"] == {"id": body["user"]["id"], "name": "alice"}  # type: ignore[index]
    expires = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00")).timestamp()
    assert abs(expires - (time.time() + PAIRING_TTL)) < 60
    assert 0 < int(str(body["expires_in"])) <= PAIRING_TTL

    response = await anonymous.fetch(
        "/api/v1/auth/pair", "POST", json.dumps({"code": body["code"], "device": "Chrome · Mac"})
    )
    assert response.code == 200, response.body
    issued = json.loads(response.body)
    assert issued["user"]["name"] == "alice"
    browser = Api(anonymous.client, anonymous.base_url, issued["token"])
    listed = json.loads((await browser.fetch("/api/v1/devices")).body)["items"]
    assert {"Chrome · Mac"} <= {d["name"] for d in listed}
    again = await anonymous.fetch("/api/v1/auth/pair", "POST", json.dumps({"code": body["code"]}))
    assert_json_error(again, 401, "invalid_pairing_code")  # one-time


@pytest.mark.gen_test
async def test_only_a_signed_in_device_may_ask(anonymous: Api) -> None:
    response = await anonymous.fetch(CODES, "POST", b"")
    assert_json_error(response, 401, "unauthorized")


@pytest.mark.gen_test
async def test_past_the_budget_it_is_429_with_retry_after(api: Api, other_api: Api) -> None:
    for _ in range(PAIRING_CODES_PER_USER):
        assert (await new_code(api))[0] == 201
    refused = await api.fetch(CODES, "POST", b"")
    assert_json_error(refused, 429, "too_many_pairing_codes")
    assert 0 < int(refused.headers["Retry-After"]) <= PAIRING_TTL
    assert (await new_code(other_api))[0] == 201  # another user's budget is their own
