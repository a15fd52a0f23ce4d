"""Attempt windows in the catalog, so that every process counts against one budget.

Several `serve` processes on one PostgreSQL catalog each see only some of a guesser's
attempts; counted in the catalog, the guesses through all of them meet one limit. The
units are those of `throttle` (an IPv4 address or an IPv6 /64, its /56 and /48, and
everyone together), each a row of `kind`, counted in one statement.

The windows are fixed: a key's first attempt opens one of `window` seconds, and at most
the limit of attempts are let through in it. A refused attempt is counted against none
of its units and does not move a window's end: a guesser held back uses up nothing of
everyone's budget. (Attempts racing each other may each be counted, one of them then
refused: the limit holds, and a little of the others' budgets goes.)

The table holds at most about `max_keys` rows of a kind. When it is full, the windows
that have ended make room; a live window is never dropped, so no stranger can reset a
throttle by crowding it out. An address not yet known while every row is live is
refused (429, until the first window ends): a flood of fresh addresses locks out only
newcomers, for one window, and cannot grow the table.

When the catalog cannot be reached, `attempt` raises CatalogUnavailable (answered 503
`backend_unavailable` with Retry-After): an attempt is never let through uncounted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .. import errors
from ..catalog import Throttles
from .throttle import MAX_CLIENTS, units

PAIRING = "pairing"
WECHAT = "wechat"


class SharedThrottle:
    """`per_client` attempts a window from one client (wider IPv6 prefixes: a multiple
    of it), and at most `total` from everyone together (None: no such cap)."""

    def __init__(
        self,
        catalog: Throttles,
        kind: str,
        per_client: int,
        window: float,
        total: int | None = None,
        *,
        max_keys: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kind = kind
        self.per_client = per_client
        self.window = window
        self.total = total
        self._catalog = catalog
        self._max_keys = max_keys
        self._clock = clock

    async def attempt(self, address: str) -> None:
        """Count an attempt from `address`, or raise 429 `too_many_attempts`."""
        now = self._clock()
        limits = dict(units(address, self.per_client, self.total))
        found = await self._catalog.count_attempt(
            self.kind, limits, now, self.window, self._max_keys
        )
        waits = []
        for key, limit in limits.items():
            window = found.get(key)
            if window is None:
                waits.append(self.window)  # the table is full of live windows
            elif window.hits > limit or (window.hits >= limit and not window.counted):
                waits.append(window.expires_at - now)
        if waits or not all(window.counted for window in found.values()):
            retry_after = max(1, math.ceil(max(waits, default=1)))
            raise errors.ApiError(errors.TOO_MANY_ATTEMPTS, retry_after=retry_after)
