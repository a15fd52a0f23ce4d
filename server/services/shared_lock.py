"""A lock held by many at once (`shared`) or by one alone (`exclusive`), on one event loop.

Ingests place and record blobs side by side (their catalog rows then share a commit);
what forgets blobs and deletes their files must see none of them half-done. A waiting
`exclusive` holder goes first: shared holders arriving after it wait behind it, so a
steady stream of uploads never keeps garbage collection out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["SharedLock"]


class SharedLock:
    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._shared = 0  # holders of the shared side
        self._exclusive = False  # whether one holds the exclusive side
        self._waiting_exclusive = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._exclusive and not self._waiting_exclusive
            )
            self._shared += 1
        try:
            yield
        finally:
            async with self._changed:
                self._shared -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._changed:
            self._waiting_exclusive += 1
            try:
                await self._changed.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._waiting_exclusive -= 1
                # A waiter given up (cancelled) lets the shared ones behind it go.
                self._changed.notify_all()
            self._exclusive = True
        try:
            yield
        finally:
            async with self._changed:
                self._exclusive = False
                self._changed.notify_all()
