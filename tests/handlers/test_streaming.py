"""streaming.byte_range: the Range header as StaticFileHandler reads it, for a stored object."""

from __future__ import annotations

import pytest

from server.handlers.streaming import Unsatisfiable, byte_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (0, 1000, False)),
        ("", (0, 1000, False)),
        ("bytes=0-99", (0, 100, True)),
        ("bytes=100-", (100, 1000, True)),
        ("bytes=-10", (990, 1000, True)),
        ("bytes=-5000", (0, 1000, False)),  # more than there is: the whole object
        ("bytes=0-", (0, 1000, False)),
        ("bytes=990-5000", (990, 1000, True)),
        ("bytes=0-0", (0, 1, True)),
        ("items=0-9", (0, 1000, False)),  # not a byte range: ignored, as Tornado does
        ("bytes=0-1,5-6", (0, 1000, False)),  # several ranges: the whole object
    ],
)
def test_ranges(header: str | None, expected: tuple[int, int, bool]) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=5-4", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)
