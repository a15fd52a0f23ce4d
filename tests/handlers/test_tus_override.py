"""tus through X-HTTP-Method-Override, as WeChat sends it."""

from __future__ import annotations

import pytest

from server.config import Settings
from tests.conftest import Api
from tests.handlers.helpers import assert_json_error, files_in, sha256
from tests.handlers.tus_client import TUS, UPLOADS, head, new_upload, offset_of, patch, picture

# X-HTTP-Method-Override ------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_method_override_as_wechat_sends_it(api: Api, settings: Settings) -> None:
    data = picture()
    url = await new_upload(api, data)
    first = await patch(api, url, 0, data[:60_000], override=True)
    assert first.code == 204, first.body
    assert first.headers["Upload-Offset"] == "60000"

    described = await api.fetch(url, "POST", b"", {**TUS, "X-HTTP-Method-Override": "HEAD"})
    assert described.code == 200
    assert described.headers["Upload-Offset"] == "60000"
    assert described.headers["Upload-Length"] == str(len(data))
    assert described.body == b""

    last = await patch(api, url, 60_000, data[60_000:], override=True)
    assert last.headers["Tubei-Image-Id"] == sha256(data)

    other = await new_upload(api, picture())
    gone = await api.fetch(other, "POST", b"", {**TUS, "X-HTTP-Method-Override": "delete"})
    assert gone.code == 204
    assert (await head(api, other)).code == 404
    assert files_in(settings.tmp_dir) == []


@pytest.mark.gen_test
async def test_method_override_refusals(api: Api) -> None:
    url = await new_upload(api, picture())
    response = await api.fetch(url, "POST", b"", {**TUS, "X-HTTP-Method-Override": "PUT"})
    assert_json_error(response, 400, "bad_request")
    response = await api.fetch(url, "POST", b"", TUS)
    assert_json_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "OPTIONS, HEAD, PATCH, DELETE"
    response = await api.fetch(
        UPLOADS + "/", "POST", b"", {**TUS, "X-HTTP-Method-Override": "PATCH"}
    )
    assert_json_error(response, 405, "method_not_allowed")
    # The override is for POST only: a GET with it is still a GET.
    response = await api.fetch(url, "GET", None, {**TUS, "X-HTTP-Method-Override": "HEAD"})
    assert_json_error(response, 405, "method_not_allowed")
    assert await offset_of(api, url) == 0
