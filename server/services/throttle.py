"""Attempts per client address: a sliding window each, in a bounded table.

One client guessing pairing codes (or hammering the WeChat login) is held back
without locking anyone else out. The table holds at most `max_clients` windows;
when it is full the client idle the longest is forgotten, so memory stays bounded
whatever addresses arrive. IPv6 clients are counted per /64, the block one
household or one machine gets, so that cycling through its own addresses does
not buy a client fresh windows.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from .. import errors

MAX_CLIENTS = 10_000


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
        key = client_key(address)
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
        if len(recent) >= self.limit:
            wait = recent[0] + self.window - now
            raise errors.ApiError(errors.TOO_MANY_ATTEMPTS, retry_after=max(1, math.ceil(wait)))
        recent.append(now)

    def __len__(self) -> int:
        """How many clients are remembered."""
        return len(self._windows)
