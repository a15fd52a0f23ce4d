"""Thumbnails: derived from blobs, cached on disk, decoded in worker processes, once.

Files under `--data` (`thumbs/`); with `copies` (object storage) those are a cache of
the store of derived images (thumbnail_copies.py). A decode reads a local file of the
original, fetched first from object storage (`BlobStore.source`).

The grid size is made as photos arrive, from a queue that holds hashes only, at most
`queue_size` of them: past that, the catalog (blobs whose thumbnail is not settled) is
the queue, read again in pages when the in-memory one runs dry. A restart finds the
same rows. Previews are made the first time someone opens one, ahead of the queue,
together with any size the photo still lacks: one decode for every size.

Each decode is an attempt counted in the catalog (thumbnail_attempts.py): after
`attempts` failures the photo is kept without thumbnails.

Once in this process (one decode of a photo at a time), and, given `leases` (processes
sharing a data folder and a PostgreSQL catalog), once across them: each size is made
under a lease in the catalog, and one another process is making is waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from .. import errors, imaging
from ..catalog import BlobRecord, CatalogUnavailable, ImageRecord, Library
from ..imaging import DecodePool
from ..storage import BlobStore, StorageFull
from ..storage.held import remove_unheld
from ..storage.home import StorageUnavailable
from .derived_leases import DerivedLeases
from .thumbnail_attempts import DecodeAttempts
from .thumbnail_copies import DerivedCopies

log = logging.getLogger(__name__)

GRID = imaging.THUMBNAIL_SIZES["grid"]
PREVIEW = imaging.THUMBNAIL_SIZES["preview"]
# Made as photos arrive; the preview waits for its first viewer (docs/decoding.md).
EAGER_SIZES: tuple[int, ...] = (GRID,)
ALL_SIZES: tuple[int, ...] = tuple(sorted(set(imaging.THUMBNAIL_SIZES.values())))


@dataclass(frozen=True)
class QueueLimits:
    attempts: int = 3  # failed decodes before a photo is kept without thumbnails
    queue_size: int = 1000  # hashes held in memory; the rest wait in the catalog


@dataclass(frozen=True)
class QueueState:
    queued: int  # hashes in the in-memory queue
    active: int  # taken from it, being made
    in_catalog: bool  # more wait in the catalog than the queue holds
    lag: float  # seconds the oldest queued hash has waited (0 when none waits)


class Thumbnails:
    def __init__(
        self,
        root: Path,
        store: BlobStore,
        catalog: Library,
        pool: DecodePool,
        executor: Executor,
        max_pixels: int,
        limits: QueueLimits = QueueLimits(),
        *,
        leases: DerivedLeases | None = None,
        copies: DerivedCopies | None = None,
    ) -> None:
        self.root = root
        self.pool = pool
        self._catalog = catalog
        self._executor = executor
        self._limits = limits
        self._attempts = DecodeAttempts(
            store, catalog, pool, max_pixels, limits.attempts, copies, self._settle
        )
        self.leases = leases
        self.copies = copies
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._overflowed = False  # some pending work is only in the catalog
        self._wake = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self._active: set[str] = set()  # taken from the queue, being made
        self._refilling = False
        self._closing = False
        self._progress = asyncio.Event()  # set whenever a job or a refill ends
        self._decoding: dict[str, asyncio.Future[None]] = {}
        self._queued_at: dict[str, float] = {}  # when each queued hash joined the queue
        self.on_settled: Callable[[list[ImageRecord]], None] | None = None
        self.on_idle: Callable[[], None] | None = None  # the queue has just run dry
        root.mkdir(parents=True, exist_ok=True)

    @property
    def outcomes(self) -> Counter[str]:
        """Decode attempts by how they ended."""
        return self._attempts.outcomes

    def path(self, sha256: str, size: int) -> Path:
        name = f"{sha256}-{size}-v{imaging.THUMBNAIL_VERSION}.jpg"
        return self.root / sha256[:2] / sha256[2:4] / name

    # on demand ----------------------------------------------------------------

    async def ensure(self, blob: BlobRecord, size: int) -> Path | None:
        """The thumbnail's file, made now if missing; None when it cannot be made."""
        if not blob.decodable or blob.thumbnail is False:
            return None
        path = self.path(blob.sha256, size)
        if await self._exists(path):
            return path
        if blob.damaged:
            return None  # the stored bytes are not the photo's: nothing is made from them
        sizes = [s for s in ALL_SIZES if s == size or s in EAGER_SIZES]
        try:
            made = await self._decode(blob, sizes, urgent=True)
            if made and blob.thumbnail is None:
                await self._settle(blob.sha256, True)
        except StorageFull:
            raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
            raise
        return path if made and await self._exists(path) else None

    async def _decode(self, blob: BlobRecord, sizes: list[int], *, urgent: bool) -> bool | None:
        """Make the sizes not on disk yet, in one decode: True when all are there.

        False when the photo cannot have thumbnails (now settled so), None when this
        attempt failed and a later one may do better. Raises FileNotFoundError when the
        original is gone.
        """
        sha256 = blob.sha256
        while (running := self._decoding.get(sha256)) is not None:
            await asyncio.shield(running)  # one decode of a photo at a time
        # Claimed before the next await: two callers that both found it free would
        # otherwise both decode, and the second to finish would lose the first's claim
        # and leave whoever waits on it waiting for good.
        done = asyncio.get_running_loop().create_future()
        self._decoding[sha256] = done
        try:
            missing = {}
            for size in sizes:
                if not await self._exists(path := self.path(sha256, size)):
                    missing[size] = path
            if not missing:
                return True
            make = functools.partial(self._attempts.make, blob, urgent)
            if self.leases is None:
                return await make(missing)
            return await self.leases.make_once(sha256, missing, self._exists, make)
        finally:
            del self._decoding[sha256]
            done.set_result(None)
            self._progress.set()

    async def _settle(self, sha256: str, made: bool) -> None:
        completed = await self._catalog.settle_thumbnail(sha256, made)
        if completed and self.on_settled is not None:
            self.on_settled(completed)

    # the queue ----------------------------------------------------------------

    def schedule(self, blob: BlobRecord) -> None:
        """Make the eager sizes in the background, so the gallery finds them ready."""
        if not blob.decodable or blob.thumbnail is not None or blob.damaged:
            return
        self._start()
        if blob.sha256 in self._queued:
            return
        if len(self._queue) >= self._limits.queue_size:
            self._overflowed = True  # it is pending in the catalog: a refill finds it
        else:
            self._enqueue(blob.sha256)
        self._wake.set()

    def _enqueue(self, sha256: str) -> None:
        self._queue.append(sha256)
        self._queued.add(sha256)
        self._queued_at[sha256] = time.monotonic()

    def queue_state(self) -> QueueState:
        """What waits for thumbnails and for how long (for the metrics)."""
        oldest = self._queued_at.get(self._queue[0]) if self._queue else None
        return QueueState(
            queued=len(self._queue),
            active=len(self._active),
            in_catalog=self._overflowed,
            lag=time.monotonic() - oldest if oldest is not None else 0.0,
        )

    def resume(self) -> None:
        """Pick up what the catalog says is pending (at start-up)."""
        self._start()
        self._overflowed = True
        self._wake.set()

    def _start(self) -> None:
        if not self._runners:
            for n in range(self.pool.limits.workers):
                task = asyncio.get_running_loop().create_task(self._run(), name=f"thumbnails-{n}")
                self._runners.append(task)

    async def _run(self) -> None:
        while True:
            sha256 = await self._next()
            self._queued.discard(sha256)
            self._queued_at.pop(sha256, None)
            if self._closing:
                return  # still pending in the catalog: the next start makes it
            self._active.add(sha256)
            try:
                await self._background(sha256)
            except (CatalogUnavailable, StorageUnavailable) as error:
                # Still pending in the catalog: the next start (or a view) makes them.
                log.warning("thumbnails of %s wait for the backends: %s", sha256, error)
            except Exception:
                log.exception("making thumbnails of %s failed", sha256)
            finally:
                self._active.discard(sha256)
                self._progress.set()

    async def _next(self) -> str:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._overflowed and not self._refilling:
                self._overflowed = False
                self._refilling = True
                try:
                    await self._refill()
                finally:
                    self._refilling = False
                    self._progress.set()
                continue
            if self.on_idle is not None and not self._active:
                self.on_idle()
            self._wake.clear()
            await self._wake.wait()

    async def _refill(self) -> None:
        # Those being made are pending too: a page that large always holds the next ones.
        page = self._limits.queue_size + len(self._active) + len(self._decoding)
        pending = await self._catalog.pending_thumbnails(page)
        if len(pending) == page:
            self._overflowed = True  # more wait in the catalog than this page shows
        for blob in pending:
            sha256 = blob.sha256
            if sha256 in self._queued or sha256 in self._active or sha256 in self._decoding:
                continue
            if len(self._queue) >= self._limits.queue_size:
                self._overflowed = True
                break
            self._enqueue(sha256)

    async def _background(self, sha256: str) -> None:
        blob = await self._catalog.get_blob(sha256)
        if blob is None or not blob.decodable or blob.thumbnail is not None or blob.damaged:
            return
        try:
            made = await self._decode(blob, list(EAGER_SIZES), urgent=False)
        except FileNotFoundError:
            log.warning("no thumbnail for %s: its original is missing", sha256)
            return
        if made:
            await self._settle(sha256, True)
        elif made is None and len(self._queue) < self._limits.queue_size:
            self._enqueue(sha256)  # failed: tried again after the others
        elif made is None:
            self._overflowed = True

    async def drain(self) -> None:
        """Wait until nothing is queued or being made (in tests, and before a scrub)."""
        while self._queue or self._overflowed or self._refilling or self._active or self._decoding:
            await self._until_progress()

    async def _until_progress(self) -> None:
        self._progress.clear()
        await self._progress.wait()

    async def close(self) -> None:
        """Stop taking work; let the decodes under way finish; stop the workers."""
        self._closing = True
        while self._active or self._decoding:
            await self._until_progress()
        for task in self._runners:
            task.cancel()
        for task in self._runners:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runners.clear()
        await self.pool.close()
        if self.copies is not None:
            await self.copies.close()

    # scrub --------------------------------------------------------------------

    async def missing(self, blob: BlobRecord) -> list[int]:
        """The eager sizes whose file is not there, of a blob that can have thumbnails."""
        if not blob.decodable or blob.thumbnail is False:
            return []
        return [s for s in EAGER_SIZES if not await self._exists(self.path(blob.sha256, s))]

    async def rebuild(self, blob: BlobRecord) -> bool:
        """Make the missing eager sizes now; True when every one is there."""
        if not blob.decodable or blob.thumbnail is False:
            return False
        if await self._decode(blob, list(EAGER_SIZES), urgent=True) is not True:
            return False
        if blob.thumbnail is None:
            await self._settle(blob.sha256, True)
        return True

    # files --------------------------------------------------------------------

    async def _exists(self, path: Path) -> bool:
        """The file is here, or (with copies) was fetched from the store just now."""
        if await asyncio.get_running_loop().run_in_executor(self._executor, path.exists):
            return True
        return self.copies is not None and await self.copies.fetch(path)

    def _remove(self, sha256: str) -> None:
        for size in ALL_SIZES:
            self.path(sha256, size).unlink(missing_ok=True)
        for path in self.path(sha256, GRID).parent.glob(f"{sha256}-preview-*.mp4"):
            path.unlink(missing_ok=True)  # a video's playable preview (video_previews.py)

    async def remove(self, sha256: str) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._remove, sha256)
        if self.copies is not None:
            await self.copies.remove(self.path(sha256, size) for size in ALL_SIZES)

    def _orphans(self, known: set[str]) -> list[Path]:
        return [
            path
            for pattern in ("??/??/*.jpg", "??/??/*.mp4")  # .mp4: videos' previews
            for path in self.root.glob(pattern)
            if path.name.split("-", 1)[0] not in known
        ]

    def _remove_temp_files(self, older_than: float) -> int:
        return remove_unheld(self.root.glob("??/??/.*.tmp"), older_than)

    async def remove_temp_files(self, older_than: float) -> int:
        """Half-written thumbnails their writer left behind, untouched for `older_than`
        seconds: never one a live writer holds, in this process or another (held.py)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._remove_temp_files, older_than)

    async def remove_orphans(self, known: set[str]) -> int:
        loop = asyncio.get_running_loop()
        orphans = await loop.run_in_executor(self._executor, self._orphans, known)
        for path in orphans:
            await loop.run_in_executor(self._executor, path.unlink, True)
        return len(orphans)
