"""Attempt windows in the catalog, on both backends: counted atomically, ended windows
start again, and the rows of a kind stay within their cap without a live one dropped."""

from __future__ import annotations

import asyncio

import pytest

from server.catalog import Catalog, Window


@pytest.mark.gen_test
async def test_each_key_has_a_window_that_ends_and_starts_again(catalog: Catalog) -> None:
    first = await catalog.count_attempt("pairing", ["a", "*"], 100.0, 60.0, 10)
    assert first == {"a": Window(1, 160.0), "*": Window(1, 160.0)}
    second = await catalog.count_attempt("pairing", ["a", "b", "*"], 130.0, 60.0, 10)
    assert second == {"a": Window(2, 160.0), "b": Window(1, 190.0), "*": Window(2, 160.0)}
    # The same key of another kind is another window.
    assert await catalog.count_attempt("wechat", ["a"], 130.0, 60.0, 10) == {"a": Window(1, 190.0)}
    # At its end a window starts again from one attempt.
    third = await catalog.count_attempt("pairing", ["a", "b"], 160.0, 60.0, 10)
    assert third == {"a": Window(1, 220.0), "b": Window(2, 190.0)}
    # A key named twice is counted once.
    assert await catalog.count_attempt("pairing", ["b", "b"], 161.0, 60.0, 10) == {
        "b": Window(3, 190.0)
    }


@pytest.mark.gen_test
async def test_concurrent_attempts_are_each_counted_once(catalog: Catalog) -> None:
    counted = await asyncio.gather(
        *(catalog.count_attempt("pairing", ["a", "*"], 100.0, 60.0, 10) for _ in range(25))
    )
    assert sorted(found["a"].hits for found in counted) == list(range(1, 26))
    assert sorted(found["*"].hits for found in counted) == list(range(1, 26))


@pytest.mark.gen_test
async def test_a_full_table_takes_no_new_key_and_drops_no_live_window(catalog: Catalog) -> None:
    for key in ("a", "b", "c"):
        await catalog.count_attempt("wechat", [key], 100.0, 60.0, 3)
    # Full of live windows: a stranger is left out, the known keys are counted still.
    assert await catalog.count_attempt("wechat", ["x"], 110.0, 60.0, 3) == {}
    assert await catalog.count_attempt("wechat", ["a", "y"], 110.0, 60.0, 3) == {
        "a": Window(2, 160.0)
    }
    # Another kind has a cap of its own.
    assert await catalog.count_attempt("pairing", ["x"], 110.0, 60.0, 3) == {"x": Window(1, 170.0)}
    # Once windows have ended, they make room.
    assert await catalog.count_attempt("wechat", ["x", "a"], 160.0, 60.0, 3) == {
        "x": Window(1, 220.0),
        "a": Window(1, 220.0),
    }
    # b and c ended and were cleared: one of them fits again, then the table is full.
    assert await catalog.count_attempt("wechat", ["b"], 161.0, 60.0, 3) == {"b": Window(1, 221.0)}
    assert await catalog.count_attempt("wechat", ["c"], 161.0, 60.0, 3) == {}
