"""Pairing a device for a token, the login methods, throttling per client address,
public calls, and one user's library hidden from another."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest

from server.errors import ApiError
from server.services import Services
from server.services.auth import PAIRING_ATTEMPTS, AuthService
from tests.conftest import Api, unique_jpeg
from tests.handlers.helpers import assert_json_error

PAIR = "/api/v1/auth/pair"


async def pair(anonymous: Api, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    response = await anonymous.fetch(PAIR, "POST", raw, {"Content-Type": "application/json"})
    return response.code, json.loads(response.body)


@pytest.mark.gen_test
async def test_a_pairing_code_gives_a_working_token(anonymous: Api, services: Services) -> None:
    pairing = await services.auth.create_pairing_code("carol")
    assert len(pairing.code) == 6 and pairing.code.isdigit()
    code, body = await pair(anonymous, {"code": pairing.code, "device": "Carol's phone"})
    assert code == 200, body
    assert body["user"]["name"] == "carol"
    assert body["device"]["name"] == "Carol's phone"
    assert body["device"]["current"] is True
    assert isinstance(body["device"]["id"], int)

    carol = Api(anonymous.client, anonymous.base_url, body["token"])
    photo = unique_jpeg()
    status, uploaded = await carol.upload([("photo", "c.jpg", photo)])
    assert status == 200, uploaded
    status, page = await carol.json("/api/v1/images")
    assert status == 200
    assert [i["sha256"] for i in page["items"]] == [hashlib.sha256(photo).hexdigest()]
    # The token is carol's: the service resolves it to her and nobody else.
    found = await services.auth.authenticate(body["token"])
    assert found is not None and found[0].name == "carol"


@pytest.mark.gen_test
async def test_a_pairing_code_works_once(anonymous: Api, services: Services) -> None:
    pairing = await services.auth.create_pairing_code("carol")
    code, first = await pair(anonymous, {"code": pairing.code, "device": "one"})
    assert code == 200, first
    code, second = await pair(anonymous, {"code": pairing.code, "device": "two"})
    assert code == 401
    assert second["error"]["code"] == "invalid_pairing_code"
    assert "token" not in second


@pytest.mark.gen_test
async def test_an_expired_pairing_code_is_refused(anonymous: Api, services: Services) -> None:
    auth = AuthService(services.catalog, services.events, pairing_ttl=-1)
    expired = await auth.create_pairing_code("carol")
    code, body = await pair(anonymous, {"code": expired.code, "device": "late"})
    assert code == 401
    assert body["error"]["code"] == "invalid_pairing_code"


@pytest.mark.gen_test
async def test_a_wrong_code_is_refused(anonymous: Api, services: Services) -> None:
    pairing = await services.auth.create_pairing_code("carol")
    wrong = f"{(int(pairing.code) + 1) % 10**6:06d}"
    for guess in (wrong, "abcdef", "1234567", ""):
        code, body = await pair(anonymous, {"code": guess, "device": "guess"})
        assert code == 401, guess
        assert body["error"]["code"] == "invalid_pairing_code"
    code, body = await pair(anonymous, {"code": pairing.code})  # device is optional
    assert code == 200, body


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"code=123456", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b'["123456"]', "invalid_json"),
        ({"device": "phone"}, "invalid_argument"),
        ({"code": None}, "invalid_argument"),
        ({"code": ["123456"]}, "invalid_argument"),
        ({"code": {"value": "123456"}}, "invalid_argument"),
        ({"code": True}, "invalid_argument"),
        ({"code": 1.5}, "invalid_argument"),
        ({"code": "123456", "device": 7}, "invalid_argument"),
    ],
    ids=lambda v: repr(v)[:24],
)
async def test_bad_pairing_bodies_are_400(
    anonymous: Api, services: Services, body: Any, error: str
) -> None:
    code, answer = await pair(anonymous, body)
    assert code == 400, answer
    assert answer["error"]["code"] == error
    assert isinstance(answer["error"]["message"], str)


@pytest.mark.gen_test
async def test_health_needs_no_token(anonymous: Api) -> None:
    code, body = await anonymous.json("/api/v1/health")
    assert code == 200
    assert body["status"] == "ok"
    assert isinstance(body["version"], str)
    code, body = await anonymous.json("/api/v1/images")
    assert code == 401
    assert body["error"]["code"] == "unauthorized"


@pytest.mark.gen_test
async def test_users_are_isolated(api: Api, other_api: Api) -> None:
    alice_photo, kept_photo = unique_jpeg(), unique_jpeg()
    code, uploaded = await api.upload(
        [("photo", "a.jpg", alice_photo), ("photo", "k.jpg", kept_photo)]
    )
    assert code == 200, uploaded
    sha, kept = (i["sha256"] for i in uploaded["items"])
    md5 = hashlib.md5(alice_photo).hexdigest()

    code, page = await other_api.json("/api/v1/images")
    assert code == 200 and page["items"] == []
    for path in (f"/images/{sha}", f"/images/{sha}/original", f"/images/{sha}/thumbnail"):
        response = await other_api.fetch("/api/v1" + path)
        assert response.code == 404, path
        assert alice_photo not in response.body
    seed = await other_api.fetch(f"/api/v1/service/image?md5={md5}")
    assert seed.code == 404 and alice_photo not in seed.body
    code, check = await other_api.json("/api/v1/images/check", "POST", {"sha256": [sha, kept]})
    assert check == {"present": [], "missing": [sha, kept]}
    code, check = await other_api.json("/api/v1/images/check", "POST", {"md5": [md5]})
    assert check == {"present": [], "missing": [md5]}

    code, _ = await other_api.json(f"/api/v1/images/{kept}", "DELETE")
    assert code == 404
    code, _ = await api.json(f"/api/v1/images/{sha}", "DELETE")
    assert code == 200
    code, _ = await other_api.json("/api/v1/trash")
    assert _["items"] == []
    code, _ = await other_api.json(f"/api/v1/trash/{sha}")
    assert code == 404
    code, _ = await other_api.json(f"/api/v1/trash/{sha}/restore", "POST")
    assert code == 404
    code, _ = await other_api.json(f"/api/v1/trash/{sha}", "DELETE")
    assert code == 404

    # Everything of alice's is where she left it.
    code, page = await api.json("/api/v1/images")
    assert [i["sha256"] for i in page["items"]] == [kept]
    code, trash = await api.json("/api/v1/trash")
    assert [i["sha256"] for i in trash["items"]] == [sha]
    code, check = await api.json("/api/v1/images/check", "POST", {"sha256": [sha, kept]})
    assert check == {"present": [kept], "missing": [sha]}


@pytest.mark.gen_test
async def test_the_same_bytes_from_two_users_stay_two_entries(api: Api, other_api: Api) -> None:
    photo = unique_jpeg()
    code, alice = await api.upload([("photo", "a.jpg", photo)])
    code, bob = await other_api.upload([("photo", "b.jpg", photo)])
    assert code == 200, bob
    assert alice["items"][0]["duplicate"] is False
    assert bob["items"][0]["duplicate"] is False
    sha = bob["items"][0]["sha256"]
    code, _ = await other_api.json(f"/api/v1/images/{sha}", "DELETE")
    assert code == 200
    response = await other_api.fetch(f"/api/v1/trash/{sha}", "DELETE")
    assert response.code == 204
    original = await api.fetch(f"/api/v1/images/{sha}/original")
    assert original.code == 200 and original.body == photo
    code, image = await api.json(f"/api/v1/images/{sha}")
    assert image["filename"] == "a.jpg"


@pytest.mark.gen_test
async def test_guessing_codes_is_capped(anonymous: Api, services: Services) -> None:
    pairing = await services.auth.create_pairing_code("carol")
    wrong = f"{(int(pairing.code) + 1) % 10**6:06d}"
    for _ in range(PAIRING_ATTEMPTS):
        code, _body = await pair(anonymous, {"code": wrong, "device": "guess"})
        assert code == 401
    response = await anonymous.fetch(
        "/api/v1/auth/pair", "POST", json.dumps({"code": pairing.code, "device": "too late"})
    )
    body = json.loads(response.body)
    assert response.code == 429 and body["error"]["code"] == "too_many_attempts"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


@pytest.mark.gen_test
async def test_the_guessing_cap_lifts_after_its_window(services: Services) -> None:
    auth = AuthService(
        services.catalog, services.events, max_pairing_attempts=3, attempt_window=0.3
    )
    pairing = await auth.create_pairing_code("carol")
    wrong = f"{(int(pairing.code) + 1) % 10**6:06d}"
    for _ in range(3):
        with pytest.raises(ApiError):
            await auth.pair(wrong, "guess", address="192.0.2.9")
    with pytest.raises(ApiError) as raised:
        await auth.pair(pairing.code, "right, but throttled", address="192.0.2.9")
    assert raised.value.code == "too_many_attempts"
    await asyncio.sleep(0.35)
    # the refused attempt did not use the code
    issued = await auth.pair(pairing.code, "phone", address="192.0.2.9")
    assert issued.user.name == "carol"


@pytest.mark.gen_test
async def test_concurrent_guesses_cannot_slip_past_the_cap(services: Services) -> None:
    auth = AuthService(services.catalog, services.events, max_pairing_attempts=5)
    pairing = await auth.create_pairing_code("carol")
    wrong = f"{(int(pairing.code) + 1) % 10**6:06d}"
    guesses = [auth.pair(wrong, "guess", address="192.0.2.9") for _ in range(30)]
    results = await asyncio.gather(
        *guesses, auth.pair(pairing.code, "last", address="192.0.2.9"), return_exceptions=True
    )
    assert all(isinstance(r, ApiError) for r in results), results[-1]
    assert sum(getattr(r, "code", "") == "too_many_attempts" for r in results) == 26


@pytest.mark.gen_test
async def test_one_guessing_client_does_not_lock_out_another(services: Services) -> None:
    auth = AuthService(services.catalog, services.events, max_pairing_attempts=3)
    pairing = await auth.create_pairing_code("carol")
    wrong = f"{(int(pairing.code) + 1) % 10**6:06d}"
    for _ in range(3):
        with pytest.raises(ApiError):
            await auth.pair(wrong, "guess", address="203.0.113.66")
    with pytest.raises(ApiError) as raised:
        await auth.pair(pairing.code, "guess", address="203.0.113.66")
    assert raised.value.code == "too_many_attempts"
    issued = await auth.pair(pairing.code, "carol's phone", address="198.51.100.20")
    assert issued.user.name == "carol"


@pytest.mark.gen_test
async def test_the_login_methods_are_public(anonymous: Api) -> None:
    code, body = await anonymous.json("/api/v1/auth/methods")
    assert code == 200
    assert body == {"pair": True, "wechat": False}


@pytest.mark.gen_test
async def test_wechat_login_is_off_unless_configured(anonymous: Api) -> None:
    for raw in (json.dumps({"code": "0a1b2c"}), "not json"):
        response = await anonymous.fetch("/api/v1/auth/wechat", "POST", raw)
        assert_json_error(response, 404, "wechat_login_disabled")
