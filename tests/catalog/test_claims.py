"""Leases in the catalog, on both backends: one live holder at a time, renewed by its
holder, taken over once ended, given up only by their holder."""

from __future__ import annotations

import asyncio

import pytest

from server.catalog import Catalog


@pytest.mark.gen_test
async def test_a_lease_has_one_live_holder(catalog: Catalog) -> None:
    assert await catalog.claim_holder("k", 100.0) is None
    assert await catalog.claim("k", "one", 100.0, 10.0)
    assert not await catalog.claim("k", "two", 105.0, 10.0)
    assert await catalog.claim_holder("k", 105.0) == "one"
    assert await catalog.claim("other", "two", 105.0, 10.0)  # another key is apart
    # Its holder renews it; the others wait for its end.
    assert await catalog.claim("k", "one", 108.0, 10.0)
    assert not await catalog.claim("k", "two", 115.0, 10.0)
    assert await catalog.claim_holder("k", 118.0) is None  # ended, not released
    assert await catalog.claim("k", "two", 118.0, 10.0)
    assert await catalog.claim_holder("k", 118.0) == "two"


@pytest.mark.gen_test
async def test_only_its_holder_releases_a_lease(catalog: Catalog) -> None:
    assert await catalog.claim("k", "one", 100.0, 10.0)
    await catalog.release("k", "two")
    assert await catalog.claim_holder("k", 101.0) == "one"
    await catalog.release("k", "one")
    assert await catalog.claim_holder("k", 101.0) is None
    assert await catalog.claim("k", "two", 101.0, 10.0)


@pytest.mark.gen_test
async def test_of_concurrent_claims_one_wins(catalog: Catalog) -> None:
    won = await asyncio.gather(*(catalog.claim("k", f"holder-{n}", 100.0, 10.0) for n in range(12)))
    assert won.count(True) == 1


@pytest.mark.gen_test
async def test_ended_leases_are_swept_and_live_ones_kept(catalog: Catalog) -> None:
    assert await catalog.claim("killed", "gone", 100.0, 10.0)  # never released
    assert await catalog.claim("live", "here", 105.0, 10.0)
    assert await catalog.sweep_claims(109.0) == 0
    assert await catalog.sweep_claims(110.0) == 1
    assert await catalog.claim_holder("live", 110.0) == "here"
    assert await catalog.sweep_claims(110.0) == 0
    # The swept key is free as an ended one was: taken at once.
    assert await catalog.claim("killed", "next", 110.0, 10.0)
    assert await catalog.claim_holder("killed", 111.0) == "next"
