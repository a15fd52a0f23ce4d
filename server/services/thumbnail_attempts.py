"""One attempt at a photo's thumbnails (or a video's poster), counted in the catalog.

Each decode is counted before it starts; one that kills its worker, runs out of its
memory or out of time counts as failed, and after `attempts` failures the photo is kept
without thumbnails, as if it could not be decoded. The file decoded is a local one: the
blob's own, or (object storage) a copy fetched first, so that a store that cannot be
reached counts no failed decode. What is made is published to the store of derived
images, given `copies`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..catalog import BlobRecord, Library
from ..imaging import DecodeFailed, DecodePool
from ..imaging.budget import rough, rough_video
from ..storage import BlobStore
from .thumbnail_copies import DerivedCopies

log = logging.getLogger(__name__)

Derive = Callable[..., Awaitable[str | None]]  # DecodePool.render, or .poster for a video
Settle = Callable[[str, bool], Awaitable[None]]  # record that a blob has thumbnails, or never will


class DecodeAttempts:
    def __init__(
        self,
        store: BlobStore,
        catalog: Library,
        pool: DecodePool,
        max_pixels: int,
        attempts: int,
        copies: DerivedCopies | None,
        settle: Settle,
    ) -> None:
        self._pool = pool
        self._store = store
        self._catalog = catalog
        self._max_pixels = max_pixels
        self._attempts = attempts
        self._copies = copies
        self._settle = settle
        self.outcomes: Counter[str] = Counter()  # decode attempts by how they ended

    async def make(self, blob: BlobRecord, urgent: bool, outputs: dict[int, Path]) -> bool | None:
        """Decode once into `outputs`: True when made, False when the photo can never have
        them (now settled so), None when this attempt failed and a later one may do better."""
        budget = self._pool.limits.budget
        if blob.kind == "video":  # a poster: one frame about a second in, upright
            weight = rough_video(blob.width, blob.height, budget)
            return await self._attempt(blob.sha256, outputs, urgent, weight, self._pool.poster)
        weight = rough(blob.width, blob.height, blob.format, max(outputs), budget)
        return await self._attempt(blob.sha256, outputs, urgent, weight)

    async def _attempt(
        self,
        sha256: str,
        outputs: dict[int, Path],
        urgent: bool,
        weight: int,
        derive: Derive | None = None,
    ) -> bool | None:
        # A local file to decode: the blob's own, or (object storage) a copy fetched
        # first, so that a store that cannot be reached counts no failed decode.
        async with self._store.source(sha256) as source:
            derive = derive or self._pool.render
            return await self._attempt_on(source, sha256, outputs, urgent, weight, derive)

    async def _attempt_on(
        self,
        source: Path,
        sha256: str,
        outputs: dict[int, Path],
        urgent: bool,
        weight: int,
        derive: Derive,
    ) -> bool | None:
        attempts = await self._catalog.attempt_thumbnail(sha256)
        if attempts > self._attempts:
            log.warning("no thumbnail for %s: %d decodes failed before", sha256, attempts - 1)
            await self._settle(sha256, False)
            return False
        try:
            reason = await derive(source, outputs, self._max_pixels, urgent=urgent, weight=weight)
        except DecodeFailed as error:
            log.warning("decoding %s failed (attempt %d): %s", sha256, attempts, error)
            self.outcomes["failed"] += 1
            if attempts >= self._attempts:
                await self._settle(sha256, False)
                return False
            return None
        if reason is not None:
            self.outcomes["undecodable"] += 1
            log.info("no thumbnail for %s: %s", sha256, reason)
            await self._settle(sha256, False)
            return False
        self.outcomes["made"] += 1
        if self._copies is not None:
            await self._copies.publish(outputs.values())
        if attempts > 1 or urgent:
            # Settling clears the count too: only a photo settled already needs this write.
            await self._catalog.thumbnail_succeeded(sha256)
        return True
