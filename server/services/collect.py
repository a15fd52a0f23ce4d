"""Garbage collection that ingests in other processes cannot race.

Several processes may share one data folder and one catalog, so no lock of ours keeps
an ingest and gc apart. Two protocols do, on either side of the catalog's rule that a
blob left with no entry is only *marked* unreferenced, and an ingest that refers to it
again clears the mark in the transaction that records it.

gc, for each blob: delete its row in one statement, only if it is still marked, since
before the grace period, and no entry refers to it (`drop_unreferenced_blobs`); move
its file into the graveyard (`bury`); ask the catalog again; if the row is back (an
ingest recorded the same bytes meanwhile) put the file back unless one is in place
(`unbury`), else delete it (`discard`).

Ingest (`LibraryService.commit_all`): place the file (a hard link: the staged name
stays), record it, then check that the file is there, and place it again from the
staged copy if gc moved it in between.

Why an entry's file is always there once both are done: take an entry recorded by an
ingest I. No gc deletes the row after I records it while the entry lasts (a row with an
entry is never deleted). A gc G that deleted it before moved the file either before I's
check, which then finds it gone and places it again, or after I's check, hence after I
recorded the row: G's second look finds the row and puts the file back. A file G finds
in place already is the same bytes under the same name. Nothing else removes a stored
file: graves are the only files ever deleted, and a grave a collector left behind (it
stopped between its steps) is settled the same way by the next gc.

Files with no row at all (a crash between placing and recording) go the same way, but
only once the file has not been placed or moved for the grace period (`st_ctime`): one
another process placed a moment ago is about to be recorded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..catalog import Catalog
from ..storage import BlobStore
from .thumbnails import Thumbnails

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class Collected:
    trash_expired: int
    blobs_removed: int
    orphan_files: int
    thumbnails_removed: int


class Collector:
    def __init__(
        self,
        catalog: Catalog,
        store: BlobStore,
        thumbnails: Thumbnails,
        trash_seconds: float,
        grace: float,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._thumbnails = thumbnails
        self._trash_seconds = trash_seconds
        self.grace = grace

    # the steps, in order ----------------------------------------------------------

    async def take(self, now: float, limit: int = BATCH) -> list[str]:
        """Forget blobs unreferenced for the grace period; their hashes."""
        return await self._catalog.drop_unreferenced_blobs(now - self.grace, limit)

    async def bury(self, sha256: str) -> str | None:
        """Move a forgotten blob's file into the graveyard; the grave, if there was a file."""
        return await self._store.bury(sha256)

    async def settle(self, sha256: str, grave: str) -> bool:
        """Look again: back in place if an ingest recorded the blob meanwhile, else
        deleted. True when it was deleted."""
        if await self._catalog.get_blob(sha256) is not None:
            if await self._store.unbury(grave):
                log.info("blob %s was recorded again while gc removed it: put back", sha256)
            return False
        await self._store.discard(grave)
        return True

    async def remove(self, sha256: str) -> bool:
        """`bury` then `settle` one blob (its thumbnails too, when it goes); True if it went."""
        grave = await self.bury(sha256)
        gone = grave is None or await self.settle(sha256, grave)
        if gone and await self._catalog.get_blob(sha256) is None:
            await self._thumbnails.remove(sha256)
        return grave is not None and gone

    # a whole collection -------------------------------------------------------------

    async def run(self) -> Collected:
        """Empty old trash, then remove what nothing refers to (past the grace period)."""
        now = time.time()
        expired = await self._catalog.expire_trash(now - self._trash_seconds, now)
        await self._catalog.mark_unreferenced_blobs(now)
        await self._settle_graves()
        removed = 0
        while True:
            taken = await self.take(now)
            for sha256 in taken:
                await self.remove(sha256)
            removed += len(taken)
            if len(taken) < BATCH:
                break
        orphans = await self._remove_orphans(now)
        known = await self._catalog.known_blobs()
        thumbs = await self._thumbnails.remove_orphans(known)
        return Collected(expired, removed, orphans, thumbs)

    async def _settle_graves(self) -> None:
        """Graves a collector left behind (it stopped between its steps)."""
        for grave in await self._store.graves(self.grace):
            await self.settle(grave.split(".", 1)[0], grave)

    async def _remove_orphans(self, now: float) -> int:
        known = await self._catalog.known_blobs()
        cutoff = now - self.grace
        removed = 0
        async for sha256 in self._store.all_blobs():
            if sha256 in known:
                continue
            changed = await self._store.changed_at(sha256)
            if changed is None or changed > cutoff:
                continue  # placed a moment ago: its ingest is about to record it
            if await self._catalog.get_blob(sha256) is not None:
                continue  # recorded since `known` was read
            log.warning("removing blob %s: no catalog entry refers to it", sha256)
            if await self.remove(sha256):
                removed += 1
        return removed
