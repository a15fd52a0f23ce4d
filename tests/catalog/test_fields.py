"""Each record's columns are declared once (server/catalog/fields.py) and both backends
store and give back every one of them."""

from __future__ import annotations

import dataclasses

import pytest

from server.catalog import BlobRecord, Catalog, UploadRecord
from server.catalog.fields import BLOB_FIELDS, IMAGE_COLUMNS, UPLOAD_FIELDS, columns
from tests.catalog.records import blob


def test_the_field_lists_are_the_records_fields() -> None:
    assert tuple(f.name for f in dataclasses.fields(BlobRecord)) == BLOB_FIELDS
    assert tuple(f.name for f in dataclasses.fields(UploadRecord)) == UPLOAD_FIELDS
    assert all(f"b.{name}" in IMAGE_COLUMNS for name in BLOB_FIELDS)
    assert columns(["id", "offset"], "u.") == 'u.id, u."offset"'


@pytest.mark.gen_test
async def test_every_blob_field_is_stored_and_read_back(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    full = dataclasses.replace(
        blob("every field"),
        orientation=6,
        taken_at="2024-05-01T10:00:00+08:00",
        camera_make="Make",
        camera_model="Model",
        has_gps=True,
        decodable=False,
        thumbnail=False,
        exif=True,
    )
    image, _ = await catalog.add_image(alice.id, full, "full.jpg", 1000.0)
    assert image.blob == full
    assert await catalog.get_blob(full.sha256) == full
    await catalog.mark_damaged(full.sha256, "mismatch", 1001.0)
    assert await catalog.get_blob(full.sha256) == dataclasses.replace(full, damage="mismatch")
    video = dataclasses.replace(
        blob("a video"), kind="video", duration=12.345, codec="hevc", format="MOV"
    )
    assert (await catalog.add_image(alice.id, video, "v.mov", 1001.5))[0].blob == video
    assert await catalog.get_blob(video.sha256) == video
    motion = dataclasses.replace(
        blob("a motion photo"), motion_offset=2775, motion_length=3 << 32, live_id="A-B"
    )
    assert (await catalog.add_image(alice.id, motion, "m.jpg", 1001.7))[0].blob == motion
    assert await catalog.get_blob(motion.sha256) == motion
    unknown = dataclasses.replace(blob("nothing known"), thumbnail=None, exif=None)
    assert (await catalog.add_image(alice.id, unknown, "n.jpg", 1002.0))[0].blob == unknown


@pytest.mark.gen_test
async def test_every_upload_field_is_stored_and_read_back(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    upload = UploadRecord(
        id="u-1",
        user_id=alice.id,
        length=99,
        offset=0,
        metadata={"filename": "aW1nLmpwZw==", "filetype": "", "名": "5ZCN"},
        created_at=1000.25,
        expires_at=2000.5,
    )
    await catalog.add_upload(upload)
    assert await catalog.get_upload("u-1") == upload
    done = await catalog.complete_upload("u-1", "a" * 64, True, 3000.0)
    assert done == dataclasses.replace(
        upload, offset=99, image_sha256="a" * 64, duplicate=True, expires_at=3000.0
    )
