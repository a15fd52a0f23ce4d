"""--blobs file:///folder: originals in a folder of their own, outside --data."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from tests.conftest import Api
from tests.handlers.helpers import API, blob_path, files_in, photo, upload_one


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data=tmp_path / "data", blobs=f"file://{tmp_path}/big/blobs", gc_interval=3600)


@pytest.mark.gen_test
async def test_originals_live_in_the_folder_blobs_names(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    data = photo()
    item = await upload_one(api, data)
    assert (
        blob_path(settings, item["id"])
        == tmp_path / "big/blobs" / item["id"][:2] / item["id"][2:4] / item["id"]
    )
    assert blob_path(settings, item["id"]).read_bytes() == data
    assert files_in(settings.data / "blobs") == []
    response = await api.fetch(f"{API}/images/{item['id']}/original")
    assert response.code == 200 and response.body == data
