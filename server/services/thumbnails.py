"""Thumbnails: derived from blobs, cached on disk, made off the event loop, once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path

from .. import imaging
from ..catalog import BlobRecord, Catalog
from ..storage import BlobStore

log = logging.getLogger(__name__)


class Thumbnails:
    def __init__(
        self,
        root: Path,
        store: BlobStore,
        catalog: Catalog,
        executor: Executor,
        max_pixels: int,
    ) -> None:
        self.root = root
        self._store = store
        self._catalog = catalog
        self._executor = executor
        self._max_pixels = max_pixels
        self._making: dict[tuple[str, int], asyncio.Future[bool]] = {}
        self._background: set[asyncio.Task[None]] = set()
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str, size: int) -> Path:
        name = f"{sha256}-{size}-v{imaging.THUMBNAIL_VERSION}.jpg"
        return self.root / sha256[:2] / sha256[2:4] / name

    async def ensure(self, blob: BlobRecord, size: int) -> Path | None:
        """The thumbnail's file, made now if missing; None when it cannot be made."""
        if not blob.decodable or blob.thumbnail is False:
            return None
        path = self.path(blob.sha256, size)
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(self._executor, path.exists):
            return path
        if blob.damaged:
            return None  # the stored bytes are not the photo's: nothing is made from them
        key = (blob.sha256, size)
        pending = self._making.get(key)
        if pending is None:
            pending = loop.create_future()
            self._making[key] = pending
            try:
                made = await self._make(blob.sha256, path, size)
                pending.set_result(made)
            except BaseException as error:
                pending.set_exception(error)
                raise
            finally:
                del self._making[key]
        made = await asyncio.shield(pending)
        return path if made else None

    async def _make(self, sha256: str, path: Path, size: int) -> bool:
        source = self._store.local_path(sha256)
        if source is None:
            return False
        loop = asyncio.get_running_loop()
        made = await loop.run_in_executor(
            self._executor, imaging.make_thumbnail, source, path, size, self._max_pixels
        )
        if not made:
            log.info("no thumbnail for %s: it cannot be decoded", sha256)
            await self._catalog.set_thumbnail(sha256, False)
        return made

    def schedule(self, blob: BlobRecord, then: Callable[[], Awaitable[None]] | None = None) -> None:
        """Make every size in the background, so the gallery finds them ready; then `then`."""
        if then is None and (not blob.decodable or blob.thumbnail is not None):
            return
        task = asyncio.get_running_loop().create_task(self._make_all(blob, then))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _make_all(self, blob: BlobRecord, then: Callable[[], Awaitable[None]] | None) -> None:
        try:
            if blob.decodable and blob.thumbnail is None:
                for size in sorted(imaging.THUMBNAIL_SIZES.values()):
                    if await self.ensure(blob, size) is None:
                        break
                else:
                    await self._catalog.set_thumbnail(blob.sha256, True)
        except Exception:
            log.exception("making thumbnails of %s failed", blob.sha256)
        if then is not None:
            try:
                await then()
            except Exception:
                log.exception("after thumbnails of %s", blob.sha256)

    def _missing(self, sha256: str) -> list[int]:
        sizes = sorted(set(imaging.THUMBNAIL_SIZES.values()))
        return [size for size in sizes if not self.path(sha256, size).exists()]

    async def missing(self, blob: BlobRecord) -> list[int]:
        """The sizes whose file is not there, of a blob that can have thumbnails."""
        if not blob.decodable or blob.thumbnail is False:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._missing, blob.sha256)

    async def rebuild(self, blob: BlobRecord) -> bool:
        """Make the missing sizes now; True when every size is there."""
        if not blob.decodable or blob.thumbnail is False:
            return False
        for size in await self.missing(blob):
            if await self.ensure(blob, size) is None:
                return False
        if blob.thumbnail is None:
            await self._catalog.set_thumbnail(blob.sha256, True)
        return True

    async def drain(self) -> None:
        """Wait for background work (at shutdown, and in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def _remove(self, sha256: str) -> None:
        for size in imaging.THUMBNAIL_SIZES.values():
            self.path(sha256, size).unlink(missing_ok=True)

    async def remove(self, sha256: str) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._remove, sha256)

    def _orphans(self, known: set[str]) -> list[Path]:
        return [
            path
            for path in self.root.glob("??/??/*.jpg")
            if path.name.split("-", 1)[0] not in known
        ]

    def _stale_temp_files(self, older_than: float) -> list[Path]:
        cutoff = time.time() - older_than
        stale = []
        for path in self.root.glob("??/??/.*.tmp"):
            try:
                if path.stat().st_mtime <= cutoff:
                    stale.append(path)
            except FileNotFoundError:
                continue
        return stale

    async def remove_temp_files(self, older_than: float) -> int:
        """Half-written thumbnails a crash left behind (their writer renames them in place)."""
        loop = asyncio.get_running_loop()
        stale = await loop.run_in_executor(self._executor, self._stale_temp_files, older_than)
        for path in stale:
            await loop.run_in_executor(self._executor, path.unlink, True)
        return len(stale)

    async def remove_orphans(self, known: set[str]) -> int:
        loop = asyncio.get_running_loop()
        orphans = await loop.run_in_executor(self._executor, self._orphans, known)
        for path in orphans:
            await loop.run_in_executor(self._executor, path.unlink, True)
        return len(orphans)
