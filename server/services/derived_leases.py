"""Leases on derived images, in the catalog: each image made by one process at a time.

Several processes sharing a data folder and a catalog may be asked for one derived
image at once (the grid size as a photo arrives, its preview at the first view). Before
decoding, a process claims the lease on each (blob, size) it means to write; what it
holds, it makes (temp file and rename, as ever) and releases. A size whose lease another
process holds live is waited for: its file is looked for every `poll` seconds until it
is there, or until the lease is given up or ends, and only then taken over. A lease is
renewed while its decode runs (a third of `ttl` at a time), so a holder that is killed
stops renewing and its lease ends `ttl` seconds later at most.

`outcomes` counts leases by how they went: `taken` (free, claimed), `waited` (another
process made the image meanwhile), `expired` (its holder's lease ended, or was given up,
without the image: this process took it over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from pathlib import Path

from ..catalog import CatalogUnavailable, Claims

log = logging.getLogger(__name__)

# Renewed every third of it while the decode runs, however long the decode may take
# (--decode-timeout): a killed holder keeps the others waiting this long at most, and
# that wait is a viewer's, on a preview's first view.
LEASE_TTL = 15.0
POLL = 0.25
LEASE_OUTCOMES = ("taken", "waited", "expired")

Exists = Callable[[Path], Awaitable[bool]]


def lease_key(sha256: str, size: int) -> str:
    return f"thumbnail:{sha256}:{size}"


def holder_name() -> str:
    """This process (and this object in it), as other processes see it in the catalog."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class DerivedLeases:
    def __init__(
        self,
        catalog: Claims,
        ttl: float = LEASE_TTL,
        *,
        poll: float = POLL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl
        self.holder = holder_name()
        self.outcomes: Counter[str] = Counter()
        self._catalog = catalog
        self._poll = min(poll, ttl / 4)
        self._clock = clock

    async def make_once(
        self,
        sha256: str,
        missing: dict[int, Path],
        exists: Exists,
        make: Callable[[dict[int, Path]], Awaitable[bool | None]],
    ) -> bool | None:
        """`make` the sizes whose lease this process takes; wait for the others, and take
        over those whose holder gave up or died without making them. What `make` says
        (True: every size is there)."""
        waited = False
        while True:
            mine = await self.claim(sha256, missing, waited=waited)
            made: bool | None = True
            if mine:
                async with self.holding(sha256, mine):
                    # Made and released between the caller's look and this claim: done.
                    outputs = {
                        size: missing[size] for size in mine if not await exists(missing[size])
                    }
                    if outputs:
                        made = await make(outputs)
            others = {size: path for size, path in missing.items() if size not in mine}
            if made is not True or not others:
                return made
            await self.wait(sha256, others, exists)
            missing = {size: path for size, path in others.items() if not await exists(path)}
            if not missing:
                return True
            waited = True

    async def claim(self, sha256: str, sizes: Collection[int], *, waited: bool) -> list[int]:
        """The sizes whose lease this process holds now (`waited`: after waiting for
        another holder, whose lease has ended)."""
        mine = []
        for size in sizes:
            key = lease_key(sha256, size)
            if await self._catalog.claim(key, self.holder, self._clock(), self.ttl):
                mine.append(size)
                self.outcomes["expired" if waited else "taken"] += 1
        return mine

    async def release(self, sha256: str, sizes: Collection[int]) -> None:
        for size in sizes:
            try:
                await self._catalog.release(lease_key(sha256, size), self.holder)
            except CatalogUnavailable as error:
                log.warning("a lease on %s ends by itself: %s", sha256, error)

    @contextlib.asynccontextmanager
    async def holding(self, sha256: str, sizes: Collection[int]) -> AsyncIterator[None]:
        """The leases renewed while the block runs, and released after it."""
        renewing = asyncio.get_running_loop().create_task(self._renew(sha256, sizes))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.release(sha256, sizes)

    async def _renew(self, sha256: str, sizes: Collection[int]) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            for size in sizes:
                try:
                    await self._catalog.claim(
                        lease_key(sha256, size), self.holder, self._clock(), self.ttl
                    )
                except CatalogUnavailable as error:
                    log.warning("renewing a lease on %s failed: %s", sha256, error)

    async def wait(self, sha256: str, paths: Mapping[int, Path], exists: Exists) -> None:
        """Until each size's file is there, or no one holds its lease live any more."""
        pending = dict(paths)
        while pending:
            for size, path in list(pending.items()):
                if await exists(path):
                    del pending[size]
                    self.outcomes["waited"] += 1
                    continue
                key = lease_key(sha256, size)
                if await self._catalog.claim_holder(key, self._clock()) is None:
                    del pending[size]
            if pending:
                await asyncio.sleep(self._poll)
