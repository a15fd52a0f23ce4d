"""Playable previews of videos a phone may not play: H.264 MP4s, made in the background.

Which videos need one: any whose original is not H.264 in an MP4, MOV or 3GP (HEVC
plays on iPhones, not on many Android phones nor in WeChat's player; VP9 and AV1 in
WebM not on iPhones). An H.264 original plays everywhere as it is: its preview is
settled `unneeded` without decoding anything.

One transcode at a time in this process, in a worker of its own (`pool`, one process on
idle CPU priority, its address space capped at the decode budget: imaging/transcode.py),
so a long transcode never holds up a photo's thumbnails. The catalog is the queue: a
video's preview is pending until settled (`made`, `unneeded`, `failed`), so a restart
finds the same work. Each transcode is counted before it starts; one that kills its
worker or runs out of its time is tried again, `attempts` times at most, and then the
video is settled `failed` (it still plays as its original where it can). With leases
(processes sharing a PostgreSQL catalog) each preview is made by one of them.

Previews stay on this process's disk (`thumbs/`, beside the thumbnails), not in object
storage: one may be hundreds of MB, and the derived store keeps whole files in memory on
their way. A process that lacks one it is asked for makes its own (pending again, then
made, without a transcode by a process that has its file).

What a viewer sees: `video.preview` events to every library holding the video, with the
transcode's progress, then one with `done` (and `ready`: whether a preview was made).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from ..catalog import BlobRecord, Catalog, CatalogUnavailable, ImageRecord, PreviewState
from ..imaging import DecodeFailed, DecodePool
from ..storage import BlobStore
from ..storage.home import StorageUnavailable
from .derived_leases import DerivedLeases
from .domain_events import VideoPreviewDone, VideoPreviewProgress
from .events import EventHub, Throttle

log = logging.getLogger(__name__)

# Bump when previews come out differently: it is in their file names and ETags.
PREVIEW_VERSION = 1
PLAYABLE_CODECS = frozenset({"h264"})
PLAYABLE_CONTAINERS = frozenset({"MP4", "MOV", "3GP"})
PAGE = 50
# A video another process is making (or whose original is not here) is looked at again
# after this long.
LATER = 60.0
_LEASE_SIZE = 0  # previews' leases, beside the thumbnails' sizes


def needs_preview(blob: BlobRecord) -> bool:
    """A video whose original a phone may not play as it is."""
    return blob.kind == "video" and not (
        blob.codec in PLAYABLE_CODECS and blob.format in PLAYABLE_CONTAINERS
    )


def preview_state(blob: BlobRecord) -> str | None:
    """What a viewer is told of a video's preview (None for a photo): `ready`, `pending`
    (to be made; with previews switched off, it waits until they are on), `unneeded`
    (the original plays on phones) or `unavailable` (none will be made)."""
    if blob.kind != "video":
        return None
    if blob.preview == "made":
        return "ready"
    if blob.preview == "unneeded" or (blob.preview is None and not needs_preview(blob)):
        return "unneeded"
    if blob.preview == "failed" or not blob.decodable or blob.damaged:
        return "unavailable"
    return "pending"


@dataclass(frozen=True)
class PreviewLimits:
    attempts: int = 3  # failed transcodes (worker killed, out of memory or time) before giving up
    base_timeout: float = 60.0  # seconds of CPU any transcode may take
    per_second: float = 20.0  # and this much more for each second of the video


class VideoPreviews:
    def __init__(
        self,
        root: Path,
        store: BlobStore,
        catalog: Catalog,
        pool: DecodePool,
        events: EventHub,
        executor: Executor,
        limits: PreviewLimits = PreviewLimits(),
        *,
        enabled: bool = True,
        leases: DerivedLeases | None = None,
    ) -> None:
        self.root = root
        self.pool = pool
        self.enabled = enabled
        self.leases = leases
        self._store = store
        self._catalog = catalog
        self._events = events
        self._executor = executor
        self._limits = limits
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._later: dict[str, float] = {}  # sha256 -> when to look at it again
        self._idle = asyncio.Event()
        self.outcomes: dict[str, int] = {}  # transcodes by how they ended (for tests, metrics)

    def path(self, sha256: str) -> Path:
        name = f"{sha256}-preview-v{PREVIEW_VERSION}.mp4"
        return self.root / sha256[:2] / sha256[2:4] / name

    # the queue ------------------------------------------------------------------

    def schedule(self, blob: BlobRecord) -> None:
        """A video that came in: its preview (or its settling as unneeded) soon."""
        if blob.kind == "video" and blob.preview is None:
            self.resume()

    def resume(self) -> None:
        """Pick up what the catalog says is pending (at start-up, and as videos arrive)."""
        if not self.enabled:
            return
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="previews")
        self._idle.clear()
        self._wake.set()

    async def remake(self, blob: BlobRecord) -> None:
        """Its file is gone: made again in the background (pending once more)."""
        await self._catalog.settle_preview(blob.sha256, None)
        self.resume()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                blob = await self._next()
            except CatalogUnavailable as error:
                log.warning("video previews wait for the catalog: %s", error)
                blob = None
            if blob is None:
                if not self._wake.is_set():  # else a video came in since the look
                    self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), LATER if self._later else None)
                continue
            try:
                await self._make(blob)
            except CatalogUnavailable as error:
                log.warning("the preview of %s waits for the catalog: %s", blob.sha256, error)
                self._later[blob.sha256] = time.monotonic() + LATER
            except Exception:
                log.exception("making the preview of %s failed", blob.sha256)
                self._later[blob.sha256] = time.monotonic() + LATER

    async def _next(self) -> BlobRecord | None:
        now = time.monotonic()
        self._later = {sha: when for sha, when in self._later.items() if when > now}
        pending = await self._catalog.pending_previews(PAGE + len(self._later))
        return next((b for b in pending if b.sha256 not in self._later), None)

    async def drain(self) -> None:
        """Wait until no preview this process could make now is left (in tests)."""
        if self._runner is not None:
            await self._idle.wait()

    async def close(self) -> None:
        """Stop: a transcode under way is cut short (its worker killed); it stays
        pending in the catalog, for the next start."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        await self.pool.close()

    # one video ------------------------------------------------------------------

    async def _make(self, blob: BlobRecord) -> None:
        sha256 = blob.sha256
        if not needs_preview(blob):
            await self._catalog.settle_preview(sha256, "unneeded")
            return
        if await self._exists(self.path(sha256)):
            # Made before a stop could settle it, or pending again for a process that
            # lacks its own copy (object storage, another disk): this one has it.
            await self._settle(sha256, "made")
            return
        if self.leases is not None:
            if not await self.leases.claim(sha256, [_LEASE_SIZE], waited=False):
                self._later[sha256] = time.monotonic() + LATER  # another process makes it
                return
            async with self.leases.holding(sha256, [_LEASE_SIZE]):
                await self._from_source(blob)
            return
        await self._from_source(blob)

    async def _from_source(self, blob: BlobRecord) -> None:
        """A local file of the original to read (with object storage, a copy fetched
        first: a store that cannot be reached counts no failed transcode)."""
        try:
            async with self._store.source(blob.sha256) as source:
                await self._transcode(blob, source)
        except FileNotFoundError:
            log.warning("no preview for %s: its original is missing", blob.sha256)
            self._later[blob.sha256] = time.monotonic() + LATER
        except StorageUnavailable as error:
            log.warning("the preview of %s waits for the store: %s", blob.sha256, error)
            self._later[blob.sha256] = time.monotonic() + LATER

    async def _transcode(self, blob: BlobRecord, source: Path) -> None:
        sha256 = blob.sha256
        attempts = await self._catalog.attempt_preview(sha256)
        if attempts > self._limits.attempts:
            log.warning("no preview for %s: %d transcodes failed before", sha256, attempts - 1)
            await self._settle(sha256, "failed")
            return
        viewers = [entry.user_id for entry in await self._catalog.preview_entries(sha256)]
        cpu = self._limits.base_timeout + self._limits.per_second * (blob.duration or 0.0)
        started = time.monotonic()
        try:
            answer = await self.pool.preview(
                source, self.path(sha256), cpu_limit=cpu, progress=self._telling(sha256, viewers)
            )
        except DecodeFailed as error:
            log.warning("the preview of %s failed (attempt %d): %s", sha256, attempts, error)
            self._count("failed")
            if attempts >= self._limits.attempts:
                await self._settle(sha256, "failed")
            return
        if not answer.get("made"):
            log.info("no preview for %s: %s", sha256, answer.get("reason"))
            self._count("undecodable")
            await self._settle(sha256, "failed")
            return
        self._count("made")
        log.info("preview of %s made in %.1f s", sha256, time.monotonic() - started)
        await self._settle(sha256, "made")

    def _telling(self, sha256: str, viewers: list[int]) -> Callable[[float], None]:
        throttle = Throttle(interval=1.0)

        def progress(done: float) -> None:
            if throttle.due(round(done * 1000), 1000):
                event = VideoPreviewProgress(sha256, round(done, 3)).plain()
                for user_id in viewers:
                    self._events.publish(user_id, event)

        progress(0.0)
        return progress

    async def _settle(self, sha256: str, state: PreviewState) -> None:
        entries: list[ImageRecord] = await self._catalog.settle_preview(sha256, state)
        for entry in entries:
            self._events.publish(entry.user_id, VideoPreviewDone(entry).plain())

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    # files ------------------------------------------------------------------------

    async def file(self, blob: BlobRecord) -> Path | None:
        """The preview's file, when one was made and is there; one made but gone is
        made again (None meanwhile)."""
        if blob.preview != "made":
            return None
        path = self.path(blob.sha256)
        if await self._exists(path):
            return path
        log.warning("the preview of %s is gone: made again", blob.sha256)
        if self.enabled:
            await self.remake(blob)
        return None

    async def _exists(self, path: Path) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._executor, path.exists)
