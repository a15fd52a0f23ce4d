"""Attempts per client address: windows slide, clients are apart, the table is bounded."""

from __future__ import annotations

import pytest

from server import errors
from server.errors import ApiError
from server.services.throttle import AttemptLimiter, LocalThrottle, client_key, prefix_keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(limiter: AttemptLimiter, address: str) -> int:
    """The Retry-After of a refused attempt (fails the test when it is let through)."""
    with pytest.raises(errors.ApiError) as raised:
        limiter.attempt(address)
    assert raised.value.kind is errors.TOO_MANY_ATTEMPTS
    assert raised.value.retry_after is not None
    return raised.value.retry_after


def test_each_client_has_its_own_window() -> None:
    clock = Clock()
    limiter = AttemptLimiter(3, 60, clock=clock)
    for _ in range(3):
        limiter.attempt("192.0.2.1")
    assert refused(limiter, "192.0.2.1") == 60
    for _ in range(3):
        limiter.attempt("192.0.2.2")  # a neighbour is not held back
    clock.now += 20
    assert refused(limiter, "192.0.2.1") == 40


def test_the_window_slides() -> None:
    clock = Clock()
    limiter = AttemptLimiter(2, 10, clock=clock)
    limiter.attempt("192.0.2.1")
    clock.now += 6
    limiter.attempt("192.0.2.1")
    assert refused(limiter, "192.0.2.1") == 4
    clock.now += 4  # the first attempt leaves the window, the second stays
    limiter.attempt("192.0.2.1")
    assert refused(limiter, "192.0.2.1") == 6
    clock.now += 0.5
    assert refused(limiter, "192.0.2.1") == 6  # rounded up, never 0


def test_refused_attempts_do_not_extend_the_wait() -> None:
    clock = Clock()
    limiter = AttemptLimiter(1, 10, clock=clock)
    limiter.attempt("192.0.2.1")
    for _ in range(50):
        refused(limiter, "192.0.2.1")
        clock.now += 0.1
    clock.now += 5.1
    limiter.attempt("192.0.2.1")


def test_ipv6_clients_count_per_64() -> None:
    limiter = AttemptLimiter(2, 60, clock=Clock())
    limiter.attempt("2001:db8:1:2::1")
    limiter.attempt("2001:db8:1:2:ffff::99")
    refused(limiter, "2001:db8:1:2:abcd::5")
    limiter.attempt("2001:db8:1:3::1")  # the next /64 is someone else


def test_client_keys() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8::1") == "2001:db8::/64"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("unknown") == "unknown"


def test_the_table_is_bounded_and_forgets_the_idlest() -> None:
    clock = Clock()
    limiter = AttemptLimiter(1, 60, max_clients=100, clock=clock)
    limiter.attempt("198.51.100.1")
    for n in range(2, 300):
        limiter.attempt(f"10.0.{n // 256}.{n % 256}")
        if n == 50:
            refused(limiter, "198.51.100.1")  # touched: now the most recent
    assert len(limiter) == 100
    # The oldest entries went first: a client seen long ago starts afresh...
    limiter.attempt("10.0.0.2")
    # ...while the latest are still held back.
    refused(limiter, "10.0.1.43")


# prefixes and everyone together -------------------------------------------------------


def local(per_client: int, total: int | None = None) -> LocalThrottle:
    return LocalThrottle(per_client, 60, total, clock=Clock())


def refusals(throttle: LocalThrottle, addresses: list[str]) -> int:
    refused = 0
    for address in addresses:
        try:
            throttle.attempt_now(address)
        except ApiError:
            refused += 1
    return refused


def test_ipv6_counts_at_the_56_and_the_48_too() -> None:
    assert [key for key, _ in prefix_keys("2001:db8:1:2::9")] == [
        "2001:db8:1::/56",
        "2001:db8:1::/48",
    ]
    assert prefix_keys("192.0.2.1") == [] and prefix_keys("::ffff:192.0.2.1") == []
    # 100 different /64s of one /56: 5 each would be under the per-client limit.
    in_one_56 = [f"2001:db8:1:{n:02x}::1" for n in range(100)]
    assert refusals(local(5), in_one_56) == 100 - 10  # the /56 takes 2 x 5
    in_one_48 = [f"2001:db8:2:{n:02x}00::1" for n in range(100)]  # a different /56 each
    assert refusals(local(5), in_one_48) == 100 - 20  # the /48 takes 4 x 5


def test_every_address_together_is_capped() -> None:
    throttle = local(5, total=30)
    many = [f"198.51.100.{n}" for n in range(60)]
    assert refusals(throttle, many) == 30
    # A refused attempt costs nothing: nobody's window grew past the cap.
    assert refusals(throttle, ["203.0.113.1"]) == 1


def test_a_refusal_at_a_wider_unit_counts_nowhere() -> None:
    throttle = local(2, total=3)
    assert refusals(throttle, ["192.0.2.1", "192.0.2.1", "192.0.2.2"]) == 0
    assert refusals(throttle, ["192.0.2.3"]) == 1
