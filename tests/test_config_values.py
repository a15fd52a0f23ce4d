"""server.config_values: each setting's text to its value, or a ValueError that says why."""

from __future__ import annotations

import pytest

from server.config_values import parse_bool, parse_port, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("0", 0),
        ("512", 512),
        ("1k", 1024),
        ("1K", 1024),
        ("1KiB", 1024),
        ("1kb", 1024),
        ("1.5K", 1536),
        ("512M", 512 * 1024**2),
        ("512MiB", 512 * 1024**2),
        ("4G", 4 * 1024**3),
        ("4GiB", 4 * 1024**3),
        ("4gib", 4 * 1024**3),
        (" 2 GiB ", 2 * 1024**3),
        ("1T", 1024**4),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "", "-1", "1e9", "4X", "4 GB extra", "G", "1.2.3M"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_parse_port_and_bool() -> None:
    assert parse_port("8080") == 8080
    for bad in ("abc", "-1", "65536", ""):
        with pytest.raises(ValueError):
            parse_port(bad)
    assert parse_bool("Yes") is True and parse_bool("off") is False
    with pytest.raises(ValueError):
        parse_bool("maybe")
