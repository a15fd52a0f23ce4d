"""Throttles kept in the catalog: one budget for every process, a bounded table, and a
refusal (never a free pass) while the catalog cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.ioloop

from server import errors
from server.catalog import CatalogUnavailable, Throttles
from server.catalog.postgres import PoolSettings, PostgresCatalog
from server.catalog.sqlite import SQLiteCatalog
from server.config import Settings
from server.services import Services, build_services
from server.services.auth import PAIRING_ATTEMPTS
from server.services.throttle_shared import PAIRING, WECHAT, SharedThrottle
from tests import postgres_server
from tests.tcp_relay import TcpRelay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def refused(throttle: SharedThrottle, address: str) -> int:
    """The Retry-After of a refused attempt (fails the test when it is let through)."""
    with pytest.raises(errors.ApiError) as raised:
        await throttle.attempt(address)
    assert raised.value.kind is errors.TOO_MANY_ATTEMPTS
    assert raised.value.retry_after is not None
    return raised.value.retry_after


@pytest.fixture(params=["sqlite", "postgresql"])
def two_catalogs(
    request: pytest.FixtureRequest, tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> Iterator[tuple[Throttles, Throttles]]:
    """Two catalog objects on one database, as two processes would hold."""
    opened: list[SQLiteCatalog | PostgresCatalog]
    if request.param == "sqlite":
        opened = [SQLiteCatalog(tmp_path / "catalog.sqlite3") for _ in range(2)]
    else:
        url: str = request.getfixturevalue("postgres_url")
        opened = [PostgresCatalog(url, PoolSettings(size=2, timeout=10)) for _ in range(2)]
    for catalog in opened:
        io_loop.run_sync(catalog.start)
    yield opened[0], opened[1]
    for catalog in opened:
        io_loop.run_sync(catalog.close)


@pytest.mark.gen_test(timeout=60)
async def test_guesses_through_two_processes_meet_one_budget(
    tmp_path: Path, postgres_url: str
) -> None:
    built: list[Services] = []
    try:
        for _ in range(2):
            settings = Settings(data=tmp_path / "data", catalog=postgres_url, gc_interval=3600)
            built.append(services := build_services(settings))
            await services.start()
        one, two = built
        code = await one.auth.create_pairing_code("carol")
        wrong = f"{(int(code.code) + 1) % 10**6:06d}"
        for n in range(PAIRING_ATTEMPTS):
            with pytest.raises(errors.ApiError) as raised:
                await built[n % 2].auth.pair(wrong, "guess", address="192.0.2.7")
            assert raised.value.code == "invalid_pairing_code"
        for services in built:  # the budget is spent on both: the right code is refused
            with pytest.raises(errors.ApiError) as raised:
                await services.auth.pair(code.code, "right, but late", address="192.0.2.7")
            assert raised.value.code == "too_many_attempts"
        issued = await two.auth.pair(code.code, "phone", address="198.51.100.3")
        assert issued.user.name == "carol"
    finally:
        for services in built:
            await services.close()


@pytest.mark.gen_test
async def test_two_throttles_on_one_catalog_count_together(
    two_catalogs: tuple[Throttles, Throttles],
) -> None:
    clock = Clock()
    one, two = (SharedThrottle(c, WECHAT, 3, 60, clock=clock) for c in two_catalogs)
    await one.attempt("192.0.2.1")
    await two.attempt("192.0.2.1")
    await one.attempt("192.0.2.1")
    assert await refused(two, "192.0.2.1") == 60
    clock.now += 45
    assert await refused(one, "192.0.2.1") == 15  # a refusal does not move the window
    await two.attempt("192.0.2.2")  # a neighbour is not held back
    clock.now += 15
    await two.attempt("192.0.2.1")  # the window has ended


@pytest.mark.gen_test
async def test_an_ipv6_prefix_and_everyone_are_counted_across_processes(
    two_catalogs: tuple[Throttles, Throttles],
) -> None:
    one, two = (SharedThrottle(c, PAIRING, 2, 60, total=5, clock=Clock()) for c in two_catalogs)
    # Four /64s of one /56 (its limit: twice a client's)
    await one.attempt("2001:db8:0:1::1")
    await two.attempt("2001:db8:0:2::1")
    await one.attempt("2001:db8:0:3::1")
    await two.attempt("2001:db8:0:4::1")
    await refused(one, "2001:db8:0:5::1")
    # Everyone together: five in all
    await two.attempt("192.0.2.1")
    await refused(one, "192.0.2.2")


@pytest.mark.gen_test
async def test_at_its_cap_the_table_takes_no_stranger_and_resets_no_one(
    two_catalogs: tuple[Throttles, Throttles],
) -> None:
    clock = Clock()
    one, two = (SharedThrottle(c, WECHAT, 2, 60, max_keys=4, clock=clock) for c in two_catalogs)
    await one.attempt("192.0.2.1")
    await one.attempt("192.0.2.1")
    assert await refused(one, "192.0.2.1") == 60
    for host in range(2, 5):
        await two.attempt(f"192.0.2.{host}")
    # Full: strangers are refused, however many, and the guesser is still held back.
    for host in range(100, 120):
        assert await refused(two, f"198.51.100.{host}") == 60
    assert await refused(two, "192.0.2.1") == 60
    await one.attempt("192.0.2.3")  # those known are counted as before
    # When the windows end, their rows make room.
    clock.now += 60
    await two.attempt("198.51.100.100")
    await one.attempt("192.0.2.1")


@pytest.mark.gen_test(timeout=60)
async def test_while_the_catalog_is_away_an_attempt_is_refused_not_let_through(
    postgres_url: str,
) -> None:
    target = (postgres_server.HOST, postgres_server.PORT)
    with TcpRelay(target) as relay:
        url = postgres_url.replace(
            f"{postgres_server.HOST}:{postgres_server.PORT}", f"127.0.0.1:{relay.port}"
        )
        catalog = PostgresCatalog(url, PoolSettings(size=2, timeout=1))
        await catalog.start()
        try:
            throttle = SharedThrottle(catalog, PAIRING, 20, 60, total=100)
            await throttle.attempt("192.0.2.1")
            relay.cut()
            for _ in range(3):
                with pytest.raises(CatalogUnavailable) as raised:
                    await throttle.attempt("192.0.2.1")
                # answered 503 backend_unavailable, with this Retry-After
                assert raised.value.retry_after > 0
        finally:
            await catalog.close()
