"""AuthServices over one catalog, each with a connection (or pool) of its own, as the
`serve` processes sharing it have: a user's waiting pairing codes meet one budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.ioloop

from server import errors
from server.catalog import Catalog
from server.config import Settings
from server.services import catalog_for
from server.services.auth import AuthService, PairingCode
from server.services.events import LocalEventHub

PROCESSES = 4
REQUESTS = 6  # to each process, all at once
BUDGET = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(data=tmp_path / "data")
    url = request.getfixturevalue("postgres_url")
    return Settings(data=tmp_path / "data", catalog=url)


@pytest.fixture
def catalogs(settings: Settings, io_loop: tornado.ioloop.IOLoop) -> Iterator[list[Catalog]]:
    opened = [catalog_for(settings) for _ in range(PROCESSES)]
    for catalog in opened:
        io_loop.run_sync(catalog.start)
    yield opened
    for catalog in opened:
        io_loop.run_sync(catalog.close)


def services(catalogs: list[Catalog]) -> list[AuthService]:
    return [
        AuthService(catalog, LocalEventHub(), pairing_codes_per_user=BUDGET) for catalog in catalogs
    ]


@pytest.mark.gen_test
async def test_requests_to_every_process_at_once_stay_within_one_budget(
    catalogs: list[Catalog],
) -> None:
    carol = await catalogs[0].ensure_user("carol")
    results = await asyncio.gather(
        *(auth.pairing_code_for(carol) for auth in services(catalogs) for _ in range(REQUESTS)),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, PairingCode)]
    refused = [r for r in results if isinstance(r, errors.ApiError)]
    assert len(made) == BUDGET
    assert len(refused) == PROCESSES * REQUESTS - BUDGET
    assert all(r.kind is errors.TOO_MANY_PAIRING_CODES for r in refused)
    waiting = await catalogs[-1].live_pairing_codes(carol.id, time.time())
    assert len(waiting) == BUDGET


@pytest.mark.gen_test
async def test_the_admins_codes_are_never_refused_and_count_against_the_budget(
    catalogs: list[Catalog],
) -> None:
    carol = await catalogs[0].ensure_user("carol")
    admin, *others = services(catalogs)
    results = await asyncio.gather(
        *(admin.create_pairing_code("carol") for _ in range(BUDGET + 1)),
        *(auth.pairing_code_for(carol) for auth in others for _ in range(REQUESTS)),
        return_exceptions=True,
    )
    admins, asked = results[: BUDGET + 1], results[BUDGET + 1 :]
    assert all(isinstance(r, PairingCode) for r in admins)
    made = [r for r in asked if isinstance(r, PairingCode)]
    assert len(made) <= BUDGET
    assert all(isinstance(r, errors.ApiError) for r in asked if r not in made)
    waiting = await catalogs[-1].live_pairing_codes(carol.id, time.time())
    assert len(waiting) == len(admins) + len(made)
    # with the admin's codes waiting, more than the budget, none more is made
    for auth in others:
        with pytest.raises(errors.ApiError) as raised:
            await auth.pairing_code_for(carol)
        assert raised.value.kind is errors.TOO_MANY_PAIRING_CODES
