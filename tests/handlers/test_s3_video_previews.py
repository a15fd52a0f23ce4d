"""A video kept in object storage (the real Ceph gateway) gets its playable preview: the
original is fetched to a local copy for the transcode; the preview stays on the disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.services import Services
from server.storage.s3_config import S3Location
from server.storage.s3_store import S3BlobStore
from tests.conftest import Api
from tests.handlers.test_video_previews import decoded, hevc
from tests.handlers.test_videos import by_multipart

IMAGES = "/api/v1/images"


@pytest.fixture
def settings(tmp_path: Path, s3_location: S3Location) -> Settings:
    return Settings(
        data=tmp_path / "data", gc_interval=3600, blobs=s3_location.url(), blobs_s3=s3_location
    )


@pytest.mark.gen_test(timeout=120)
async def test_a_video_in_object_storage_gets_its_preview(
    api: Api, services: Services, tmp_path: Path
) -> None:
    assert isinstance(services.store, S3BlobStore)
    data = hevc(tmp_path, size=(320, 240), rotation=90)
    code, item = await by_multipart(api, data, "IMG_0001.MOV")
    assert code == 200, item
    await services.previews.drain()
    assert services.previews.outcomes == {"made": 1}
    code, found = await api.json(f"{IMAGES}/{item['id']}")
    assert (code, found["video_preview"]) == (200, "ready")
    response = await api.fetch(found["urls"]["video_preview"])
    assert response.code == 200
    context, frames, _ = decoded(response.body)
    assert (context.name, context.width, context.height, len(frames)) == ("h264", 240, 320, 10)
