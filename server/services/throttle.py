"""Attempts per client address, per wider prefix and in all: sliding windows.

One client guessing pairing codes (or hammering the WeChat login) is held back
without locking anyone else out. A table of windows holds at most `max_clients`
of them; when it is full the client idle the longest is forgotten, so memory
stays bounded whatever addresses arrive.

An IPv4 client is its address. An IPv6 client is its /64 (the block one
household or machine gets), and its /56 and /48 are counted too, with wider
limits, so that a home's or a site's prefix full of /64s buys no fresh windows.
A cap over every address together holds however many addresses a guesser has.

`Throttle` is the interface the services use: `await throttle.attempt(address)`.
`LocalThrottle` keeps its windows in this process (one process: the SQLite catalog);
`throttle_shared.SharedThrottle` keeps them in the catalog, for several processes.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol

from .. import errors

MAX_CLIENTS = 10_000
# The wider IPv6 prefixes, and how many clients' worth of attempts each may make.
IPV6_PREFIXES = ((56, 2), (48, 4))
EVERYONE = "*"


def client_key(address: str) -> str:
    """The unit attempts are counted by: an IPv4 address, or an IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address  # not an IP (a Unix socket): count it as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def prefix_keys(address: str) -> list[tuple[str, int]]:
    """The wider units an address is also counted in, each with its multiple of the
    per-client limit: an IPv6 address's /56 and /48; nothing more for IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return []
    if not isinstance(ip, ipaddress.IPv6Address) or ip.ipv4_mapped is not None:
        return []
    return [
        (str(ipaddress.IPv6Network((ip, bits), strict=False)), factor)
        for bits, factor in IPV6_PREFIXES
    ]


def units(address: str, per_client: int, total: int | None) -> list[tuple[str, int]]:
    """Every key an attempt from `address` counts against, with its limit."""
    keys = [(client_key(address), per_client)]
    keys += [(key, per_client * factor) for key, factor in prefix_keys(address)]
    if total is not None:
        keys.append((EVERYONE, total))
    return keys


class Throttle(Protocol):
    async def attempt(self, address: str) -> None:
        """Count an attempt from `address`, or raise 429 `too_many_attempts`."""


class AttemptLimiter:
    """At most `limit` attempts in any `window` seconds from one client."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._max_clients = max_clients
        self._clock = clock
        self._windows: OrderedDict[str, deque[float]] = OrderedDict()

    def attempt(self, address: str) -> None:
        """Count an attempt from `address`, or raise 429 `too_many_attempts`.

        A refused attempt is not counted: a client that keeps trying while held
        back is let in again once its window has moved on.
        """
        self.check(client_key(address))

    def check(self, key: str, *, count: bool = True, limit: int | None = None) -> None:
        """Raise 429 if `key` is at its limit; else count the attempt (if asked)."""
        limit = self.limit if limit is None else limit
        now = self._clock()
        recent = self._windows.get(key)
        if recent is None:
            while len(self._windows) >= self._max_clients:
                self._windows.popitem(last=False)
            recent = self._windows[key] = deque()
        else:
            self._windows.move_to_end(key)
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= limit:
            wait = recent[0] + self.window - now
            raise errors.ApiError(errors.TOO_MANY_ATTEMPTS, retry_after=max(1, math.ceil(wait)))
        if count:
            recent.append(now)

    def __len__(self) -> int:
        """How many clients are remembered."""
        return len(self._windows)


class LocalThrottle:
    """`per_client` attempts a window from one client (wider IPv6 prefixes: a multiple
    of it), and at most `total` from everyone together (None: no such cap)."""

    def __init__(
        self,
        per_client: int,
        window: float,
        total: int | None = None,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = AttemptLimiter(per_client, window, max_clients=max_clients, clock=clock)
        self.total = total
        self.window = window

    async def attempt(self, address: str) -> None:
        self.attempt_now(address)

    def attempt_now(self, address: str) -> None:
        counted = units(address, self.clients.limit, self.total)
        # Every unit is checked before any is counted: a refused attempt costs nothing.
        for key, limit in counted:
            self.clients.check(key, count=False, limit=limit)
        for key, limit in counted:
            self.clients.check(key, limit=limit)
