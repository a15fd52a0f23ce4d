"""The budgets' catalog calls, on both backends: open uploads per user, wrong pairing
guesses, expired uploads in batches, which upload ids have rows."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

import pytest

from server.catalog import Catalog, OpenUploads, UploadRecord
from tests.catalog.records import upload


@pytest.mark.gen_test
async def test_an_upload_is_added_only_within_its_users_budget(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")

    def sized(upload_id: str, user_id: int, length: int) -> UploadRecord:
        return dataclasses.replace(upload(upload_id, user_id, 1e9), length=length, created_at=10.0)

    assert await catalog.add_upload_within(sized("a1", alice.id, 40), 2, 100) is None
    assert await catalog.add_upload_within(sized("a2", alice.id, 50), 2, 100) is None
    # a third is one too many; a second of 20 bytes more than the bytes allowed
    assert await catalog.add_upload_within(sized("a3", alice.id, 1), 2, 100) == OpenUploads(2, 90)
    assert await catalog.add_upload_within(sized("a4", alice.id, 20), 3, 100) == OpenUploads(2, 90)
    assert await catalog.get_upload("a3") is None and await catalog.get_upload("a4") is None
    assert await catalog.add_upload_within(sized("b1", bob.id, 100), 1, 100) is None
    # a finished upload no longer counts
    await catalog.complete_upload("a1", "f" * 64, False, 1e9)
    assert await catalog.add_upload_within(sized("a5", alice.id, 50), 2, 100) is None
    assert await catalog.known_uploads(["a1", "a3", "a5", "zz"]) == {"a1", "a5"}
    assert await catalog.known_uploads([]) == set()


@pytest.mark.gen_test
async def test_live_codes_are_voided_after_too_many_wrong_guesses(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    assert await catalog.add_pairing_code("c" * 64, alice.id, 1000.0)
    assert await catalog.pairing_guess_failed(10.0, 3) == 0
    assert await catalog.pairing_guess_failed(10.0, 3) == 0
    assert await catalog.pairing_guess_failed(10.0, 3) == 1
    assert await catalog.redeem_pairing_code("c" * 64, 11.0) is None


@pytest.mark.gen_test
async def test_a_users_waiting_codes_soonest_first(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    now = time.time()
    for n, ttl in enumerate([300.0, 100.0, 200.0]):
        assert await catalog.add_pairing_code(f"{n}" * 64, alice.id, now + ttl)
    assert await catalog.add_pairing_code("b" * 64, bob.id, now + 50)
    assert await catalog.live_pairing_codes(alice.id, now) == [now + 100, now + 200, now + 300]
    assert await catalog.redeem_pairing_code("1" * 64, now) == alice
    assert await catalog.live_pairing_codes(alice.id, now) == [now + 200, now + 300]
    assert await catalog.live_pairing_codes(alice.id, now + 250) == [now + 300]
    assert await catalog.live_pairing_codes(bob.id, now) == [now + 50]


@pytest.mark.gen_test
async def test_a_code_is_added_only_while_fewer_than_the_budget_wait(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    now = time.time()
    assert await catalog.add_pairing_code("1" * 64, alice.id, now + 100, max_waiting=2)
    assert await catalog.add_pairing_code("2" * 64, alice.id, now + 100, max_waiting=2)
    assert not await catalog.add_pairing_code("3" * 64, alice.id, now + 100, max_waiting=2)
    assert await catalog.redeem_pairing_code("3" * 64, now) is None  # it was not added
    assert await catalog.add_pairing_code("b" * 64, bob.id, now + 100, max_waiting=2)
    # one made without a budget is never refused, and counts against one
    assert await catalog.add_pairing_code("4" * 64, alice.id, now + 100)
    assert await catalog.redeem_pairing_code("1" * 64, now) == alice
    assert await catalog.redeem_pairing_code("2" * 64, now) == alice
    assert not await catalog.add_pairing_code("5" * 64, alice.id, now + 100, max_waiting=1)
    # an expired code holds no place
    carol = await catalog.ensure_user("carol")
    assert await catalog.add_pairing_code("6" * 64, carol.id, now - 1, max_waiting=1)
    assert await catalog.add_pairing_code("7" * 64, carol.id, now + 100, max_waiting=1)
    assert await catalog.live_pairing_codes(carol.id, now) == [now + 100]
    # a hash already waiting is refused, within the budget or not
    assert not await catalog.add_pairing_code("7" * 64, alice.id, now + 100, max_waiting=5)
    assert not await catalog.add_pairing_code("7" * 64, alice.id, now + 100)


@pytest.mark.gen_test
async def test_codes_added_at_once_through_several_connections_meet_one_budget(
    catalog: Catalog, reopen: Callable[[], Awaitable[Catalog]]
) -> None:
    alice = await catalog.ensure_user("alice")
    catalogs = [catalog, *[await reopen() for _ in range(3)]]
    expires_at = time.time() + 100
    added = await asyncio.gather(
        *(
            one.add_pairing_code(f"{n:02d}{k:02d}".ljust(64, "0"), alice.id, expires_at, 3)
            for n, one in enumerate(catalogs)
            for k in range(6)
        )
    )
    assert added.count(True) == 3
    assert len(await catalogs[-1].live_pairing_codes(alice.id, time.time())) == 3


@pytest.mark.gen_test
async def test_expired_uploads_come_in_batches_oldest_first(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    for n, expires in enumerate([5.0, 1.0, 3.0, 3.0, 9.0, 50.0]):
        await catalog.add_upload(upload(f"u{n}", alice.id, expires))
    seen: list[str] = []
    after: tuple[float, str] | None = None
    while batch := await catalog.expired_uploads(10.0, after, limit=2):
        assert len(batch) <= 2
        seen.extend(u.id for u in batch)
        after = (batch[-1].expires_at, batch[-1].id)
    assert seen == ["u1", "u2", "u3", "u0", "u4"]
