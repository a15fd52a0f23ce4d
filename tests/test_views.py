"""server/views.py: the events socket's JSON, byte for byte, from the hub's plain events.

The hub carries domain events in their plain form (and the Redis hub carries that
form as JSON between processes); the socket sends `event_json` of it. These are the
exact texts of README's events section and openapi.json's `Event` schemas.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from server.catalog import BlobRecord, ImageRecord
from server.services.domain_events import (
    ImageAdded,
    ImageDeleted,
    ImageRestored,
    Stored,
    UploadDone,
    UploadFailed,
    UploadProgress,
    VideoPreviewDone,
    VideoPreviewProgress,
    record_from_plain,
    record_plain,
)
from server.views import event_json, image_json

SHA = "ab" * 32
BLOB = BlobRecord(
    sha256=SHA,
    md5="0123456789abcdef0123456789abcdef",
    size=1234,
    format="JPEG",
    mime="image/jpeg",
    width=640,
    height=480,
    orientation=6,
    taken_at="2024-05-01T10:00:00",
    camera_make="Canon",
    camera_model=None,
    has_gps=True,
    decodable=True,
    thumbnail=True,
    exif=True,
)
RECORD = ImageRecord(
    blob=BLOB,
    user_id=7,
    filename="IMG_1.jpg",
    uploaded_at="2024-05-02T08:00:00Z",
    taken_ts=1714557600.0,
    deleted_at=None,
    deleted_ts=None,
)
BASE = f"/api/v1/images/{SHA}"
IMAGE = (
    f'{{"id":"{SHA}","sha256":"{SHA}","md5":"0123456789abcdef0123456789abcdef",'
    '"size":1234,"kind":"photo","mime":"image/jpeg","format":"JPEG","width":640,"height":480,'
    '"duration":null,"codec":null,'
    '"orientation":6,"taken_at":"2024-05-01T10:00:00","uploaded_at":"2024-05-02T08:00:00Z",'
    '"filename":"IMG_1.jpg","camera":{"make":"Canon","model":null},"gps":true,"exif":true,'
    f'"thumbnail":true,"urls":{{"original":"{BASE}/original","thumbnail":"{BASE}/thumbnail",'
    f'"preview":"{BASE}/thumbnail?size=preview","video_preview":null,"motion_video":null,'
    '"live_video":null},"video_preview":null,"live_still":null'
)


def sent(plain: dict[str, Any]) -> str:
    """What the socket sends for a plain event that crossed processes through Redis."""
    crossed = json.loads(json.dumps(plain, ensure_ascii=False, separators=(",", ":")))
    return json.dumps(event_json(crossed), ensure_ascii=False, separators=(",", ":"))


def test_an_image_is_described_with_its_urls() -> None:
    assert json.dumps(image_json(RECORD), separators=(",", ":")) == IMAGE + "}"


def test_a_motion_photo_is_a_photo_with_its_video_part() -> None:
    blob = dataclasses.replace(BLOB, motion_offset=2000, motion_length=500)
    motion = dataclasses.replace(RECORD, blob=blob)
    body = image_json(motion)
    assert (body["kind"], body["mime"], body["duration"]) == ("motion", "image/jpeg", None)
    assert body["urls"]["motion_video"] == f"{BASE}/video?variant=motion"
    assert body["urls"]["thumbnail"] == f"{BASE}/thumbnail"  # the still's
    assert record_from_plain(json.loads(json.dumps(record_plain(motion)))) == motion
    assert json.loads(sent(ImageAdded(motion).plain()))["image"] == body


def test_a_live_photo_still_links_to_its_mov_and_the_mov_names_its_still() -> None:
    mov = "f" * 64
    still = dataclasses.replace(
        RECORD, blob=dataclasses.replace(BLOB, live_id="A"), live_partner=mov
    )
    body = image_json(still)
    assert (body["kind"], body["live_still"]) == ("live", None)
    assert body["urls"]["live_video"] == f"/api/v1/images/{mov}/original"
    video_blob = dataclasses.replace(BLOB, sha256=mov, kind="video", live_id="A")
    video = dataclasses.replace(RECORD, blob=video_blob, live_partner=SHA)
    body = image_json(video)
    assert (body["kind"], body["live_still"], body["urls"]["live_video"]) == ("video", SHA, None)
    assert record_from_plain(json.loads(json.dumps(record_plain(still)))) == still


def test_a_video_is_described_with_its_kind_duration_and_codec() -> None:
    blob = dataclasses.replace(
        BLOB,
        format="MOV",
        mime="video/quicktime",
        orientation=None,
        camera_make=None,
        exif=None,
        kind="video",
        duration=3.25,
        codec="hevc",
    )
    video = dataclasses.replace(RECORD, blob=blob)
    body = image_json(video)
    assert (body["kind"], body["mime"], body["duration"], body["codec"]) == (
        "video",
        "video/quicktime",
        3.25,
        "hevc",
    )
    assert (body["orientation"], body["camera"], body["exif"]) == (None, None, None)
    assert record_from_plain(json.loads(json.dumps(record_plain(video)))) == video
    sent_image = json.loads(sent(ImageAdded(video).plain()))["image"]
    assert sent_image == body


def test_a_video_preview_is_told_as_it_goes_and_when_it_is_done() -> None:
    blob = dataclasses.replace(
        BLOB, format="MOV", mime="video/quicktime", kind="video", codec="hevc", duration=3.0
    )
    video = dataclasses.replace(RECORD, blob=blob)
    assert json.loads(sent(VideoPreviewProgress(SHA, 0.25).plain())) == {
        "type": "video.preview",
        "id": SHA,
        "progress": 0.25,
        "done": False,
    }
    assert image_json(video)["video_preview"] == "pending"
    made = dataclasses.replace(video, blob=dataclasses.replace(blob, preview="made"))
    done = json.loads(sent(VideoPreviewDone(made).plain()))
    assert {k: v for k, v in done.items() if k != "image"} == {
        "type": "video.preview",
        "id": SHA,
        "progress": 1.0,
        "done": True,
        "ready": True,
    }
    assert done["image"] == image_json(made)
    assert done["image"]["video_preview"] == "ready"
    assert done["image"]["urls"]["video_preview"] == f"{BASE}/video?variant=preview"
    failed = dataclasses.replace(video, blob=dataclasses.replace(blob, preview="failed"))
    assert json.loads(sent(VideoPreviewDone(failed).plain()))["ready"] is False
    h264 = dataclasses.replace(blob, codec="h264")
    assert image_json(dataclasses.replace(video, blob=h264))["video_preview"] == "unneeded"


def test_a_record_survives_its_plain_form() -> None:
    plain = json.loads(json.dumps(record_plain(RECORD)))
    assert record_from_plain(plain) == RECORD


def test_image_events_carry_the_image_as_the_api_describes_it() -> None:
    assert sent(ImageAdded(RECORD).plain()) == f'{{"type":"image.added","image":{IMAGE}}}}}'
    assert sent(ImageRestored(RECORD).plain()) == f'{{"type":"image.restored","image":{IMAGE}}}}}'
    assert sent(ImageDeleted(SHA).plain()) == f'{{"type":"image.deleted","id":"{SHA}"}}'


def test_upload_events_read_as_before() -> None:
    assert (
        sent(UploadProgress("u-1", 10, 20).plain())
        == '{"type":"upload.progress","upload_id":"u-1","received":10,"total":20}'
    )
    assert (
        sent(UploadFailed("u-1", "empty_file", "The file is empty.").plain())
        == '{"type":"upload.failed","upload_id":"u-1",'
        '"error":{"code":"empty_file","message":"The file is empty."}}'
    )
    one = (Stored(RECORD, False),)
    assert (
        sent(UploadDone("t-1", one, batch=False).plain())
        == f'{{"type":"upload.done","upload_id":"t-1","image":{IMAGE}}},"duplicate":false}}'
    )
    two = (Stored(RECORD, False), Stored(RECORD, True))
    assert sent(UploadDone("m-1", two, batch=True).plain()) == (
        f'{{"type":"upload.done","upload_id":"m-1","image":{IMAGE}}},"duplicate":false,'
        f'"items":[{IMAGE},"duplicate":false}},{IMAGE},"duplicate":true}}]}}'
    )


def test_events_without_records_pass_unchanged() -> None:
    for event in (
        {"type": "device.revoked", "device_id": 3},
        {"type": "resync"},
        {"type": "download.progress", "download_id": "d", "image_id": SHA, "sent": 1, "total": 2},
    ):
        assert event_json(event) == event
