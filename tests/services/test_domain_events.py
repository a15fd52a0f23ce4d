"""services/domain_events.py: every event's plain form is JSON that comes back whole."""

from __future__ import annotations

import json

from server.services.domain_events import (
    ImageAdded,
    Stored,
    UploadDone,
    record_from_plain,
)
from tests.test_views import RECORD


def through_json(plain: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(plain))
    return loaded


def test_upload_done_comes_back_whole_from_its_plain_form() -> None:
    done = UploadDone("m-1", (Stored(RECORD, False), Stored(RECORD, True)), batch=True)
    assert UploadDone.from_plain(through_json(done.plain())) == done


def test_a_plain_event_holds_the_record_not_its_wire_shape() -> None:
    plain = through_json(ImageAdded(RECORD).plain())
    assert plain["type"] == "image.added"
    image = plain["image"]
    assert isinstance(image, dict) and "urls" not in image
    assert record_from_plain(image) == RECORD
