"""SharedLock: shared holders together, an exclusive one alone, and a waiting exclusive
holder ahead of the shared ones that arrive after it."""

from __future__ import annotations

import asyncio

import pytest

from server.services.shared_lock import SharedLock


async def settle() -> None:
    """Let every task that can run, run (a few loop turns; no timing)."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.gen_test
async def test_shared_holders_hold_together_and_exclusive_waits_for_them() -> None:
    lock = SharedLock()
    release = asyncio.Event()
    inside: list[str] = []

    async def share(name: str) -> None:
        async with lock.shared():
            inside.append(name)
            await release.wait()
            inside.remove(name)

    async def exclude() -> None:
        async with lock.exclusive():
            inside.append("gc")
            assert inside == ["gc"]
            inside.remove("gc")

    sharers = [asyncio.ensure_future(share(f"ingest-{n}")) for n in range(3)]
    await settle()
    assert sorted(inside) == ["ingest-0", "ingest-1", "ingest-2"]
    gc = asyncio.ensure_future(exclude())
    await settle()
    assert not gc.done()
    release.set()
    await asyncio.gather(*sharers, gc)
    assert inside == []


@pytest.mark.gen_test
async def test_a_waiting_exclusive_holder_goes_before_later_shared_ones() -> None:
    lock = SharedLock()
    order: list[str] = []
    first_done = asyncio.Event()

    async def share(name: str, until: asyncio.Event | None = None) -> None:
        async with lock.shared():
            order.append(name)
            if until is not None:
                await until.wait()

    async def exclude() -> None:
        async with lock.exclusive():
            order.append("gc")

    first = asyncio.ensure_future(share("first", first_done))
    await settle()
    gc = asyncio.ensure_future(exclude())
    await settle()
    later = asyncio.ensure_future(share("later"))
    await settle()
    assert order == ["first"], "the later upload waits behind the waiting gc"
    first_done.set()
    await asyncio.gather(first, gc, later)
    assert order == ["first", "gc", "later"]


@pytest.mark.gen_test
async def test_an_exclusive_waiter_given_up_lets_the_shared_ones_go() -> None:
    lock = SharedLock()
    hold = asyncio.Event()
    held = asyncio.ensure_future(_hold_shared(lock, hold))
    await settle()
    gc = asyncio.ensure_future(_hold_exclusive(lock))
    await settle()
    later = asyncio.ensure_future(_hold_shared(lock, None))
    await settle()
    assert not later.done()
    gc.cancel()
    await settle()
    assert later.done(), "nothing is waiting for the exclusive side any more"
    hold.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await gc


async def _hold_shared(lock: SharedLock, until: asyncio.Event | None) -> None:
    async with lock.shared():
        if until is not None:
            await until.wait()


async def _hold_exclusive(lock: SharedLock) -> None:
    async with lock.exclusive():
        pass
