"""Cursors of the library's pages, and its months.

A cursor is the position (time, sha256) of the last photo of a page, URL-safe base64
of JSON; the next page lists what comes after it in timeline (or trash) order.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import errors
from ..catalog import Position

SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class Month:
    """A month of the library (UTC, by the time the list sorts by): its photos, and
    the cursor that lists from its newest one."""

    month: str  # "YYYY-MM"
    count: int
    cursor: str


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position[0], position[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def month_cursor(month: str) -> str:
    """The cursor whose page starts at the month's newest photo.

    A page holds the rows before the cursor's (time, sha256) in timeline order, so the
    first instant of the next month, with the smallest sha256, starts at this month's
    last instant: every photo of the month, none of the next.
    """
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC).timestamp()
    end = start + calendar.monthrange(year, number)[1] * 86400.0
    return encode_cursor((end, "0" * 64))


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        moment, sha256 = value
        if not isinstance(moment, int | float) or isinstance(moment, bool):
            raise ValueError("time")
        if not math.isfinite(moment):
            raise ValueError("time")
        if not isinstance(sha256, str) or not SHA256_RE.match(sha256):
            raise ValueError("id")
        return float(moment), sha256
    # RecursionError: `[[[[...` nested deeper than the parser goes; OverflowError: an
    # integer time too large for a float.
    except (ValueError, TypeError, binascii.Error, RecursionError, OverflowError):
        raise errors.ApiError(errors.INVALID_CURSOR) from None
