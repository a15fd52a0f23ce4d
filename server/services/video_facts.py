"""A video's facts for its blob, read by a decoding worker (the `probe` job).

FFmpeg on uploaded bytes never runs on the event loop nor in the server's process: the
worker's address-space cap and CPU timeout bound it (imaging/worker.py), and its header
walk (imaging/bmff.py) refuses a movie header that declares more than a camera writes
before FFmpeg reads it. Only headers are read: the demuxer seeks to the movie header,
never through the file.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ..imaging import DecodeFailed, DecodePool, Kind

log = logging.getLogger(__name__)


class NotAVideo(Exception):
    """Sniffed as a video container, but it holds no video: not media."""


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value) if value >= 0 else None
    return None


def _side(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _text(value: Any) -> str | None:
    return value[:256] if isinstance(value, str) and value else None


def blob_facts(kind: Kind, found: dict[str, Any] | None) -> dict[str, Any]:
    """The BlobRecord fields (beside hashes, size and thumbnail) of a video whose
    probe answered `found`; None when the probe could not finish (the video is kept,
    undecodable, with nothing known but its container)."""
    found = found or {}
    return {
        "format": kind.format,
        "mime": kind.mime,
        "width": _side(found.get("width")),
        "height": _side(found.get("height")),
        "orientation": None,  # a video's rotation is applied to width and height
        "taken_at": _text(found.get("taken_at")),
        "camera_make": None,
        "camera_model": None,
        "has_gps": found.get("has_gps") is True,
        "decodable": found.get("decodable") is True,
        "exif": None,
        "kind": "video",
        "duration": _number(found.get("duration")),
        "codec": _text(found.get("codec")),
        # A Live Photo's MOV: Apple's ContentIdentifier, its still's pairing key.
        "live_id": _text(found.get("content_identifier")),
    }


async def probe_video(pool: DecodePool, path: Path, kind: Kind) -> dict[str, Any]:
    """The blob fields of the video staged at `path`.

    Raises NotAVideo when it holds no video at all. A probe that killed its worker or
    ran out of its time is no proof the bytes are not a video: they are kept, never
    decoded. Raises FileNotFoundError or OSError when `path` cannot be read.
    """
    try:
        found = await pool.probe(path, urgent=True)
    except DecodeFailed as error:
        log.warning("video %s kept without metadata: its probe failed: %s", path.name, error)
        return blob_facts(kind, None)
    if found is None:
        raise NotAVideo(path.name)
    return blob_facts(kind, found)
