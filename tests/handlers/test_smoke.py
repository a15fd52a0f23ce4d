from __future__ import annotations

import pytest

from tests.conftest import Api, jpeg_bytes


@pytest.mark.gen_test
async def test_upload_then_list(api: Api) -> None:
    code, body = await api.upload([("photo", "a.jpg", jpeg_bytes())])
    assert code == 200, body
    assert body["items"][0]["duplicate"] is False
    code, page = await api.json("/api/v1/images")
    assert code == 200
    assert [i["id"] for i in page["items"]] == [body["items"][0]["id"]]
