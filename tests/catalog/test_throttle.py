"""Attempt windows in the catalog, on both backends: counted atomically against every
key or none, ended windows start again, and the rows of a kind stay within their cap
without a live one dropped."""

from __future__ import annotations

import asyncio

import pytest

from server.catalog import Catalog, Window


@pytest.mark.gen_test
async def test_each_key_has_a_window_that_ends_and_starts_again(catalog: Catalog) -> None:
    first = await catalog.count_attempt("pairing", {"a": 5, "*": 9}, 100.0, 60.0, 10)
    assert first == {"a": Window(1, 160.0, True), "*": Window(1, 160.0, True)}
    second = await catalog.count_attempt("pairing", {"a": 5, "b": 5, "*": 9}, 130.0, 60.0, 10)
    assert second == {
        "a": Window(2, 160.0, True),
        "b": Window(1, 190.0, True),
        "*": Window(2, 160.0, True),
    }
    # The same key of another kind is another window.
    other = await catalog.count_attempt("wechat", {"a": 5}, 130.0, 60.0, 10)
    assert other == {"a": Window(1, 190.0, True)}
    # At its end a window starts again from one attempt.
    third = await catalog.count_attempt("pairing", {"a": 5, "b": 5}, 160.0, 60.0, 10)
    assert third == {"a": Window(1, 220.0, True), "b": Window(2, 190.0, True)}


@pytest.mark.gen_test
async def test_a_key_at_its_limit_keeps_the_attempt_off_every_key(catalog: Catalog) -> None:
    for _ in range(2):
        await catalog.count_attempt("pairing", {"a": 2, "*": 9}, 100.0, 60.0, 10)
    for _ in range(3):
        held = await catalog.count_attempt("pairing", {"a": 2, "*": 9}, 110.0, 60.0, 10)
        assert held == {"a": Window(2, 160.0, False), "*": Window(2, 160.0, False)}
    # A new key met with one at its limit: taken in, nothing counted against it.
    held = await catalog.count_attempt("pairing", {"a": 2, "n": 2}, 110.0, 60.0, 10)
    assert held == {"a": Window(2, 160.0, False), "n": Window(0, 170.0, False)}
    # Another client is counted against everyone's window as before.
    counted = await catalog.count_attempt("pairing", {"b": 2, "*": 9}, 120.0, 60.0, 10)
    assert counted == {"b": Window(1, 180.0, True), "*": Window(3, 160.0, True)}


@pytest.mark.gen_test
async def test_concurrent_attempts_are_each_counted_once(catalog: Catalog) -> None:
    found = await asyncio.gather(
        *(
            catalog.count_attempt("pairing", {"a": 100, "*": 100}, 100.0, 60.0, 10)
            for _ in range(25)
        )
    )
    assert sorted(window["a"].hits for window in found) == list(range(1, 26))
    assert sorted(window["*"].hits for window in found) == list(range(1, 26))


@pytest.mark.gen_test
async def test_a_full_table_takes_no_new_key_and_drops_no_live_window(catalog: Catalog) -> None:
    for key in ("a", "b", "c"):
        await catalog.count_attempt("wechat", {key: 5}, 100.0, 60.0, 3)
    # Full of live windows: a stranger is left out, the known keys are counted still.
    assert await catalog.count_attempt("wechat", {"x": 5}, 110.0, 60.0, 3) == {}
    assert await catalog.count_attempt("wechat", {"a": 5, "y": 5}, 110.0, 60.0, 3) == {
        "a": Window(2, 160.0, True)
    }
    # Another kind has a cap of its own.
    other = await catalog.count_attempt("pairing", {"x": 5}, 110.0, 60.0, 3)
    assert other == {"x": Window(1, 170.0, True)}
    # Once windows have ended, they make room.
    assert await catalog.count_attempt("wechat", {"x": 5, "a": 5}, 160.0, 60.0, 3) == {
        "x": Window(1, 220.0, True),
        "a": Window(1, 220.0, True),
    }
    # b and c ended and were cleared: one of them fits again, then the table is full.
    fits = await catalog.count_attempt("wechat", {"b": 5}, 161.0, 60.0, 3)
    assert fits == {"b": Window(1, 221.0, True)}
    assert await catalog.count_attempt("wechat", {"c": 5}, 161.0, 60.0, 3) == {}
