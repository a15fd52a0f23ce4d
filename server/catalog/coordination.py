"""What several server processes coordinate through the catalog: throttles, leases, keys.

`Throttles` counts attempts in fixed windows, one row per (kind, key), so that every
process sharing the catalog counts against one budget. `Keys` holds the server's
random secrets (the key signing media URLs), made once, so that every process sharing
the catalog, and the next start of each, uses the same one. `Claims` holds leases: who is
making a piece of derived work (a thumbnail of one size) and until when, so that two
processes do not make it twice. Both take `now` from the caller (wall-clock seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Window:
    """One key's window: the attempts counted in it, its end, and whether this attempt
    was counted."""

    hits: int
    expires_at: float
    counted: bool


class Throttles(Protocol):
    async def count_attempt(
        self, kind: str, limits: Mapping[str, int], now: float, window: float, max_keys: int
    ) -> dict[str, Window]:
        """Count one attempt against each key's window, in one statement, unless one of
        the keys has had its limit of attempts in its window already: then against none.

        A key whose window has ended starts a new one of `window` seconds. A key not yet
        known is taken in only while fewer than `max_keys` rows of `kind` are held (the
        ended ones are cleared to make room first); a key left out is absent from the
        answer. No live window is ever dropped to make room for another. Attempts made
        at the same moment may each be counted, taking a window past its limit.
        """


class Claims(Protocol):
    async def claim(self, key: str, holder: str, now: float, ttl: float) -> bool:
        """Take the lease on `key` for `ttl` seconds if no one else holds it live; True
        when `holder` holds it now (a holder claiming again renews it)."""

    async def release(self, key: str, holder: str) -> None:
        """Give up the lease, if `holder` still holds it."""

    async def claim_holder(self, key: str, now: float) -> str | None:
        """Who holds a live lease on `key` (None when no one does)."""

    async def sweep_claims(self, now: float) -> int:
        """Delete the leases ended by `now` (their holders stopped: killed, or gone
        without releasing); how many. An ended lease is no lease to anyone, so this
        changes no answer, only the table's size."""


class Keys(Protocol):
    async def server_key(self, name: str, candidate: bytes, now: float) -> bytes:
        """The key kept under `name`: `candidate` if none was kept yet (it is then kept,
        durably), else the one kept first; every caller, in any process, gets the same."""
