"""AuthService's pairing budget: a wrong guess counts against every live code."""

from __future__ import annotations

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
