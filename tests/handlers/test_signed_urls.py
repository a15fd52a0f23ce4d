"""Signed media URLs over HTTP: what <image>, <video> and previewImage fetch without a
token, and every way such a URL is refused."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest

from server.services import Services
from server.services.media_urls import UserSigner
from server.views import signed_url
from tests.conftest import Api
from tests.handlers.helpers import API, assert_json_error, photo, sha256, upload_one
from tests.handlers.test_events import close_sockets, listen, receive

__all__ = ["close_sockets"]  # closes the sockets a test opened


def parts(url: str) -> tuple[str, dict[str, str]]:
    path, _, query = url.partition("?")
    return path, dict(urllib.parse.parse_qsl(query))


def with_query(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urllib.parse.urlencode(query)}"


async def listed(api: Api) -> dict[str, Any]:
    code, page = await api.json(f"{API}/images")
    assert code == 200, page
    item: dict[str, Any] = page["items"][0]
    return item


@pytest.mark.gen_test
async def test_the_signed_urls_work_without_a_token(api: Api, anonymous: Api, token: str) -> None:
    data = photo((800, 600))
    uploaded = await upload_one(api, data)
    assert set(uploaded["signed_urls"]) == {
        "original",
        "thumbnail",
        "preview",
        "video_preview",  # a video's playable preview: None for a photo
        "motion_video",  # a motion photo's video part: None for anything else
        "live_video",  # a Live Photo still's MOV: None for anything else
        "expires_in",
    }
    assert uploaded["signed_urls"]["video_preview"] is None
    item = await listed(api)
    signed = item["signed_urls"]
    assert 0.75 * 3600 <= signed["expires_in"] <= 3600
    assert token not in json.dumps(item) and "token" not in json.dumps(signed)
    original = await anonymous.fetch(signed["original"])
    assert original.code == 200 and original.body == data
    assert original.headers["Content-Type"] == "image/jpeg"
    grid = await anonymous.fetch(signed["thumbnail"])
    preview = await anonymous.fetch(signed["preview"])
    assert grid.code == preview.code == 200
    assert grid.headers["Content-Type"] == "image/jpeg" and grid.body != preview.body
    # the same bytes the bearer token gets
    assert grid.body == (await api.fetch(item["urls"]["thumbnail"])).body
    head = await anonymous.fetch(signed["preview"], "HEAD")
    assert head.code == 200 and head.headers["Content-Length"] == str(len(preview.body))
    # the plain URLs still need the token
    assert_json_error(await anonymous.fetch(item["urls"]["thumbnail"]), 401, "unauthorized")


@pytest.mark.gen_test
async def test_ranges_etags_and_304_work_with_a_signed_url(api: Api, anonymous: Api) -> None:
    data = photo((900, 700))
    await upload_one(api, data)
    url = (await listed(api))["signed_urls"]["original"]
    ranged = await anonymous.fetch(url, headers={"Range": "bytes=100-199"})
    assert ranged.code == 206
    assert ranged.body == data[100:200]
    assert ranged.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert ranged.headers["ETag"] == f'"{sha256(data)}"'
    again = await anonymous.fetch(url, headers={"If-None-Match": f'"{sha256(data)}"'})
    assert again.code == 304 and again.body == b""
    outside = await anonymous.fetch(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert_json_error(outside, 416, "range_not_satisfiable")


@pytest.mark.gen_test
async def test_a_tampered_signed_url_is_refused(api: Api, anonymous: Api) -> None:
    item = await upload_one(api, photo())
    other = await upload_one(api, photo())
    signed = (await listed(api))["signed_urls"]
    path, query = parts(signed["thumbnail"])
    assert set(query) == {"user", "expires", "signature"}
    sig = query["signature"]
    broken = [
        with_query(path, {**query, "user": str(int(query["user"]) + 1)}),
        with_query(path, {**query, "expires": str(int(query["expires"]) + 1)}),
        with_query(path, {**query, "signature": ("A" if sig[0] != "A" else "B") + sig[1:]}),
        with_query(path, {**query, "signature": sig[:-1]}),
        with_query(path, {**query, "expires": "12e9"}),
        with_query(path, {k: v for k, v in query.items() if k != "user"}),  # a part missing
        f"{signed['thumbnail']}&signature={sig}",  # a part twice
        f"{signed['thumbnail']}".replace("signature=", "Signature="),  # spelt otherwise
    ]
    # another blob, and another variant of the same one
    signed_for = (await listed(api))["id"]
    (elsewhere,) = {item["id"], other["id"]} - {signed_for}
    broken.append(signed["thumbnail"].replace(signed_for, elsewhere))
    broken.append(signed["thumbnail"] + "&size=preview")  # grid's signature, asking preview
    broken.append(signed["preview"].replace("size=preview", "size=grid"))
    broken.append(signed["thumbnail"].replace("/thumbnail", "/original"))
    broken.append(signed["original"].replace("/original", "/thumbnail"))
    broken.append(signed["thumbnail"] + "&size=999")
    for url in broken:
        response = await anonymous.fetch(url)
        assert_json_error(response, 403, "signed_url_invalid")
        head = await anonymous.fetch(url, "HEAD")
        assert head.code == 403 and head.body == b"", url


@pytest.mark.gen_test
async def test_an_expired_signed_url_is_refused(
    api: Api, anonymous: Api, services: Services
) -> None:
    item = await upload_one(api, photo())
    query = parts(item["signed_urls"]["original"])[1]
    key = await services.media_urls.key()
    # issued two hours ago, under this server's key: a genuine signature, out of date
    past = UserSigner(key, int(query["user"]), 3600.0, lambda: time.time() - 7200)
    path = f"{API}/images/{item['id']}/original"
    old = signed_url(path, past, item["id"], "original", past.expiry())
    response = await anonymous.fetch(old)
    assert_json_error(response, 403, "signed_url_invalid")
    assert "expired" in json.loads(response.body)["error"]["message"]
    fresh = signed_url(
        path,
        await services.media_urls.signer(int(query["user"])),
        item["id"],
        "original",
        past.expiry() + 7200,
    )
    assert (await anonymous.fetch(fresh)).code == 200


@pytest.mark.gen_test
async def test_a_signed_url_never_grants_another_users_blob(
    api: Api, other_api: Api, anonymous: Api, services: Services
) -> None:
    mine = await upload_one(api, photo())
    theirs = await upload_one(other_api, photo())
    my_url = mine["signed_urls"]["original"]
    their_url = theirs["signed_urls"]["original"]
    assert parts(my_url)[1]["user"] != parts(their_url)[1]["user"]
    # my signature on their blob's path, and theirs on mine
    assert_json_error(
        await anonymous.fetch(my_url.replace(mine["id"], theirs["id"])), 403, "signed_url_invalid"
    )
    assert_json_error(
        await anonymous.fetch(their_url.replace(theirs["id"], mine["id"])),
        403,
        "signed_url_invalid",
    )
    # my signature with their user id put in
    query = parts(my_url)[1]
    swapped = with_query(parts(my_url)[0], {**query, "user": parts(their_url)[1]["user"]})
    assert_json_error(await anonymous.fetch(swapped), 403, "signed_url_invalid")
    # a genuine signature for a user who does not have the blob: as with a token, 404
    signer = await services.media_urls.signer(int(parts(their_url)[1]["user"]))
    path = f"{API}/images/{mine['id']}/original"
    genuine = signed_url(path, signer, mine["id"], "original", signer.expiry())
    assert_json_error(await anonymous.fetch(genuine), 404, "image_not_found")


@pytest.mark.gen_test
async def test_the_access_log_blanks_signatures(
    api: Api, anonymous: Api, caplog: pytest.LogCaptureFixture
) -> None:
    await upload_one(api, photo())
    url = (await listed(api))["signed_urls"]["thumbnail"]
    signature = parts(url)[1]["signature"]
    with caplog.at_level("INFO", logger="tornado.access"):
        assert (await anonymous.fetch(url)).code == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert any("/thumbnail?" in line and "signature=***" in line for line in logged), logged
    assert not any(signature in line for line in logged)


@pytest.mark.gen_test
async def test_a_bearer_token_decides_when_both_are_sent(api: Api) -> None:
    item = await upload_one(api, photo())
    url = item["signed_urls"]["original"].replace("signature=", "signature=x")
    assert (await api.fetch(url)).code == 200


@pytest.mark.gen_test
async def test_signed_urls_outlive_the_device_they_were_issued_to(api: Api, anonymous: Api) -> None:
    """The documented trade-off (docs/security.md): revoking a device stops its token at
    once, but URLs already issued keep working until they expire (within the TTL)."""
    item = await upload_one(api, photo())
    code, devices = await api.json(f"{API}/devices")
    assert code == 200
    (current,) = [d for d in devices["items"] if d["current"]]
    response = await api.fetch(f"{API}/devices/{current['id']}", "DELETE")
    assert response.code == 204
    assert (await api.fetch(item["urls"]["original"])).code == 401
    assert (await anonymous.fetch(item["signed_urls"]["original"])).code == 200


@pytest.mark.gen_test
async def test_a_photo_announced_on_the_socket_carries_signed_urls(
    api: Api, anonymous: Api, base_url: str, token: str, services: Services
) -> None:
    image = await upload_one(api, photo())
    await services.library.thumbnails.drain()
    tablet = await listen(base_url, token)
    await api.fetch(f"{API}/images/{image['id']}", "DELETE")
    assert json.loads(await receive(tablet))["type"] == "image.deleted"
    await api.fetch(f"{API}/trash/{image['id']}/restore", "POST", b"")
    restored = json.loads(await receive(tablet))
    assert restored["type"] == "image.restored"
    signed = restored["image"]["signed_urls"]
    assert (await anonymous.fetch(signed["thumbnail"])).code == 200
