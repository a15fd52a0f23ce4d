"""AuthService's pairing budget: a wrong guess counts against every live code."""

from __future__ import annotations

import asyncio

import pytest

from server import errors
from server.services import Services
from server.services.auth import AuthService


@pytest.mark.gen_test
async def test_codes_are_void_after_their_share_of_wrong_guesses(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    auth = AuthService(
        services.catalog, services.events, pairing_code_guesses=5, max_pairing_attempts=100
    )
    first = await auth.create_pairing_code("carol")
    second = await auth.create_pairing_code("dan")
    wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in (first.code, second.code))
    for n in range(4):
        with pytest.raises(errors.ApiError):
            await auth.pair(wrong, "guess", address=f"192.0.2.{n}")
    later = await auth.create_pairing_code("erin")  # has seen no wrong guess yet
    with pytest.raises(errors.ApiError):
        await auth.pair(wrong, "guess", address="192.0.2.99")  # the 5th: both earlier void
    assert "2 pairing code(s) voided" in caplog.text
    for code in (first.code, second.code):
        with pytest.raises(errors.ApiError) as raised:
            await auth.pair(code, "too late", address="198.51.100.1")
        assert raised.value.kind is errors.INVALID_PAIRING_CODE
    issued = await auth.pair(later.code, "phone", address="198.51.100.1")
    assert issued.user.name == "erin"


@pytest.mark.gen_test
async def test_malformed_codes_count_against_no_code(services: Services) -> None:
    auth = AuthService(services.catalog, services.events, pairing_code_guesses=2)
    pairing = await auth.create_pairing_code("carol")
    for malformed in ("12345", "abcdef", "1234567"):
        with pytest.raises(errors.ApiError):
            await auth.pair(malformed, "guess", address="192.0.2.1")
    assert (await auth.pair(pairing.code, "phone", address="192.0.2.1")).user.name == "carol"


@pytest.mark.gen_test
async def test_a_signed_in_user_has_a_budget_of_waiting_codes(services: Services) -> None:
    auth = AuthService(services.catalog, services.events, pairing_codes_per_user=2)
    carol = await services.catalog.ensure_user("carol")
    dan = await services.catalog.ensure_user("dan")
    first = await auth.pairing_code_for(carol)
    await auth.pairing_code_for(carol)
    with pytest.raises(errors.ApiError) as raised:
        await auth.pairing_code_for(carol)
    assert raised.value.kind is errors.TOO_MANY_PAIRING_CODES
    assert raised.value.retry_after is not None and 0 < raised.value.retry_after <= 600
    assert (await auth.pairing_code_for(dan)).user == dan  # a budget per user
    # the admin's `pair` is not held by it
    admin = await auth.create_pairing_code("carol")
    # a code used frees its place (the admin's counts too, while it waits); the new
    # one pairs as carol, once
    assert (await auth.pair(first.code, "browser", address="192.0.2.1")).user == carol
    with pytest.raises(errors.ApiError):
        await auth.pairing_code_for(carol)
    assert (await auth.pair(admin.code, "phone", address="192.0.2.1")).user == carol
    again = await auth.pairing_code_for(carol)
    assert (await auth.pair(again.code, "browser", address="192.0.2.1")).user == carol
    with pytest.raises(errors.ApiError):
        await auth.pair(again.code, "browser", address="192.0.2.1")


@pytest.mark.gen_test
async def test_concurrent_requests_stay_within_the_budget(services: Services) -> None:
    auth = AuthService(services.catalog, services.events, pairing_codes_per_user=3)
    carol = await services.catalog.ensure_user("carol")
    results = await asyncio.gather(
        *(auth.pairing_code_for(carol) for _ in range(8)), return_exceptions=True
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 3
    assert all(isinstance(r, errors.ApiError) for r in results if r not in made)


@pytest.mark.gen_test
async def test_expired_codes_hold_no_place(services: Services) -> None:
    auth = AuthService(services.catalog, services.events, pairing_ttl=-1, pairing_codes_per_user=1)
    carol = await services.catalog.ensure_user("carol")
    for _ in range(3):
        await auth.pairing_code_for(carol)  # each is born expired, so none waits
