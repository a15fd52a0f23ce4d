"""Reading a LocalBlobStore's blobs a range at a time, as a BlobStore does for any backend
(the local files themselves are served by sendfile: `BlobStore.local_path`)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from . import BlobMissing
from .home import check_range

READ_BLOCK = 256 * 1024


def open_at(path: Path, start: int, end: int | None) -> tuple[io.FileIO, int]:
    """The file at `start`, and the end of the range (ValueError when outside the file)."""
    file = io.FileIO(path, "r")
    try:
        stop = check_range(os.fstat(file.fileno()).st_size, start, end)
        file.seek(start)
    except BaseException:
        file.close()
        raise
    return file, stop


class LocalReads:
    """size, read and source over `path_for` (LocalBlobStore has them)."""

    def path_for(self, sha256: str) -> Path:
        raise NotImplementedError

    async def run(self, fn: Callable[..., Any], *args: object) -> Any:
        raise NotImplementedError

    async def size(self, sha256: str) -> int:
        try:
            status: os.stat_result = await self.run(self.path_for(sha256).stat)
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        return status.st_size

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self.path_for(sha256)
        try:
            opened: tuple[io.FileIO, int] = await self.run(open_at, path, start, end)
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        file, stop = opened
        try:
            remaining = stop - start
            while remaining > 0:
                chunk: bytes = await self.run(file.read, min(READ_BLOCK, remaining))
                if not chunk:
                    raise OSError(f"{path} shrank while it was read")
                remaining -= len(chunk)
                yield chunk
        finally:
            await self.run(file.close)

    async def presigned_url(
        self,
        sha256: str,
        expires: int,
        *,
        disposition: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        return None  # served by this server only

    @contextlib.asynccontextmanager
    async def source(self, sha256: str) -> AsyncIterator[Path]:
        """The blob's own file (whoever opens it finds out whether it is there)."""
        yield self.path_for(sha256)
