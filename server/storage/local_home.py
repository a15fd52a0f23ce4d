"""BlobHome and DerivedStore on the local disk: LocalBlobStore's folder, seen as a home."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from . import SHA256_RE, BlobMissing
from .home import check_derived_key
from .local import LocalBlobStore, fsync_dir
from .local_files import write_whole


class LocalBlobHome:
    """The blobs of a LocalBlobStore (`blobs/ab/cd/<sha256>`), as a BlobHome."""

    def __init__(self, store: LocalBlobStore, derived_root: Path | None = None) -> None:
        self.store = store
        self.derived = LocalDerivedStore(
            derived_root or store.root.parent / "derived", store.staging_dir, store
        )

    async def put(self, staged: Path, sha256: str) -> bool:
        path = self.store.path_for(sha256)
        stat = await self.store.run(staged.stat)
        with contextlib.suppress(FileNotFoundError):
            if (await self.store.run(path.stat)).st_size == stat.st_size:
                return False
        # A file of another size under that name is damaged: the staged copy replaces it.
        await self.store.run(self.store._commit, staged, sha256)
        return True

    async def exists(self, sha256: str) -> bool:
        return await self.store.exists(sha256)

    async def size(self, sha256: str) -> int:
        return await self.store.size(sha256)

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.store.read(sha256, start, end)

    async def delete(self, sha256: str) -> None:
        await self.store.delete(sha256)

    async def pages(self, page_size: int = 1000, after: str = "") -> AsyncIterator[list[str]]:
        page: list[str] = []
        async for name in self.store.all_blobs():
            if name <= after:
                continue
            page.append(name)
            if len(page) == page_size:
                yield page
                page = []
        if page:
            yield page

    async def rehash(self, sha256: str, progress: Callable[[int], None] | None = None) -> str:
        return await self.store.rehash(sha256, progress)

    async def quarantine(self, sha256: str, reason: str) -> str:
        return await self.store.quarantine(sha256, reason)

    async def presigned_url(
        self,
        sha256: str,
        expires: int,
        *,
        disposition: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        if not SHA256_RE.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return None

    async def close(self) -> None:
        return None


class LocalDerivedStore:
    """Derived images as files under one folder, each written whole (temp, fsync, rename)."""

    def __init__(self, root: Path, tmp_dir: Path, store: LocalBlobStore) -> None:
        self.root = root
        self._tmp_dir = tmp_dir
        self._store = store

    def _path(self, key: str) -> Path:
        return self.root / check_derived_key(key)

    def _put(self, path: Path, data: bytes) -> None:
        write_whole(path, data, self._tmp_dir / f"derived-{uuid.uuid4().hex}.tmp")
        fsync_dir(path.parent)

    async def put(self, key: str, data: bytes) -> None:
        await self._store.run(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes:
        try:
            return await self._store.run(self._path(key).read_bytes)
        except FileNotFoundError:
            raise BlobMissing(key) from None

    async def delete(self, key: str) -> None:
        await self._store.run(self._path(key).unlink, True)
