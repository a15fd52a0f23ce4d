"""What the image API tests share: its paths, a made-up digest, and when a photo was taken."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.handlers.helpers import API

IMAGES = f"{API}/images"
CHECK = f"{IMAGES}/check"


def taken(item: dict[str, Any]) -> float:
    moment = datetime.fromisoformat(item["taken_at"].replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


SHA = "a" * 64
