"""BlobStore with its blobs in S3-compatible object storage, staged on the local disk.

Staging is local, as for LocalBlobStore: writers (LocalBlobWriter, hashing as bytes
arrive) and tus files stage under this store's own locked folder in `tmp/`
(local_staging.py); `commit` puts the finished file to the store under its sha256
(S3BlobHome.put: HEAD first, one PUT up to 8 MiB, multipart above, Content-MD5 on
each), and returns only once the store holds it. There is no local path to serve:
originals are read from the store (`read`, `size`), and a decoder gets a local copy
(`source`): the committed staged file while it is kept, else the object fetched into
a temporary file in the staging folder, removed afterwards.

The client (aiobotocore) is opened on first use, on the running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from botocore.exceptions import ClientError

from . import BlobMissing, BlobWriter
from .home import StorageUnavailable
from .local import LocalBlobWriter
from .local_staging import StagingFolder
from .s3 import S3BlobHome, S3DerivedStore
from .s3_config import S3Location
from .s3_graveyard import S3Graveyard

T = TypeVar("T")

# Committed staged files kept (hard links in the staging folder) for the thumbnails
# made right after an upload: at most this many, for at most this long, none larger.
KEPT_FILES = 32
KEPT_SECONDS = 600.0
KEPT_MAX_SIZE = 64 * 1024 * 1024
KEPT_SUFFIX = ".kept"


def _link(source: Path, target: Path) -> bool:
    try:
        os.link(source, target)
    except FileExistsError:
        return True  # kept already (by an earlier commit of the same bytes)
    except OSError:
        return False  # gone, or on another file system: fetched when needed
    return True


async def aclose(chunks: AsyncIterator[bytes]) -> None:
    closing = getattr(chunks, "aclose", None)
    if closing is not None:
        await closing()


class S3BlobStore:
    writer_type: type[LocalBlobWriter] = LocalBlobWriter

    def __init__(
        self,
        location: S3Location,
        tmp_dir: Path,
        executor: ThreadPoolExecutor,
        **options: Any,
    ) -> None:
        self.location = location
        self.tmp_dir = tmp_dir
        self._executor = executor
        self._options = options
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._staging = StagingFolder(tmp_dir)
        self._home: S3BlobHome | None = None
        self._opening: asyncio.Lock | None = None
        self._kept: OrderedDict[str, tuple[Path, float]] = OrderedDict()

    @property
    def staging_dir(self) -> Path:
        return self._staging.path

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def home(self) -> S3BlobHome:
        """The client on the store, opened the first time (StorageUnavailable if it cannot)."""
        if self._home is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self._home is None:
                    self._home = await S3BlobHome.open(
                        self.location, executor=self._executor, **self._options
                    )
        return self._home

    async def derived(self) -> S3DerivedStore:
        """The store of derived images beside the blobs (`derived/`), on the same client."""
        return (await self.home()).derived

    async def start(self) -> None:
        """Open the client and check the bucket (at start-up): StorageUnavailable, which
        names the bucket, when it cannot be used."""
        home = await self.home()
        try:
            await home.check()
        except (ClientError, BlobMissing) as error:
            why = (
                error.response.get("Error", {}).get("Code")
                if isinstance(error, ClientError)
                else None
            )
            raise StorageUnavailable(
                f"{self.location.url()}: the bucket cannot be used ({why or 'no such bucket'})"
            ) from error

    async def close(self) -> None:
        home, self._home = self._home, None
        if home is not None:
            await home.close()
        await self.run(self._staging.close)

    # staging -------------------------------------------------------------------------

    def open_writer(self) -> LocalBlobWriter:
        return self.writer_type(self)

    async def resume_writer(self, path: Path, offset: int) -> LocalBlobWriter:
        writer = self.writer_type(self, path)
        await self.run(writer._resume, offset)
        return writer

    async def clean_staging(self, older_than: float) -> int:
        return await self.run(self._staging.clean, older_than)

    async def commit(self, writer: BlobWriter) -> bool:
        if not isinstance(writer, LocalBlobWriter):
            raise TypeError(f"not a writer of this store: {writer!r}")
        staged = writer.result
        home = await self.home()
        new = await home.put(writer.staged_path, staged.sha256, staged.md5)
        keep = staged.size <= KEPT_MAX_SIZE and staged.sha256 not in self._kept
        await self._prune(room=1 if keep else 0)
        if keep:
            await self._keep(writer.staged_path, staged.sha256)
        return new

    async def _prune(self, room: int = 0) -> None:
        """Let go of kept files past their time, and of the oldest beyond the count."""
        # The list is this event loop's; only the links and unlinks go to the threads.
        now = time.monotonic()
        expired: list[Path] = []
        while self._kept:
            oldest, (path, since) = next(iter(self._kept.items()))
            if len(self._kept) + room <= KEPT_FILES and now - since < KEPT_SECONDS:
                break
            del self._kept[oldest]
            expired.append(path)
        for path in expired:
            await self.run(path.unlink, True)

    async def _keep(self, staged: Path, sha256: str) -> None:
        now = time.monotonic()
        kept = self.staging_dir / f"{sha256}{KEPT_SUFFIX}"
        self._kept[sha256] = (kept, now)
        # A second name: a tus writer resumed on `staged` copies it first (unshare).
        if not await self.run(_link, staged, kept):
            self._kept.pop(sha256, None)

    # the final home --------------------------------------------------------------------

    def local_path(self, sha256: str) -> Path | None:
        return None

    async def exists(self, sha256: str) -> bool:
        return await (await self.home()).exists(sha256)

    async def size(self, sha256: str) -> int:
        return await (await self.home()).size(sha256)

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        chunks = (await self.home()).read(sha256, start, end)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await aclose(chunks)  # its GET's body goes back now, not when collected

    async def delete(self, sha256: str) -> None:
        await (await self.home()).delete(sha256)

    async def all_blobs(self) -> AsyncIterator[str]:
        home = await self.home()
        async for page in home.pages():
            for sha256 in page:
                yield sha256

    async def rehash(self, sha256: str, progress: Callable[[int], None] | None = None) -> str:
        return await (await self.home()).rehash(sha256, progress)

    async def quarantine(self, sha256: str, reason: str) -> str:
        return await (await self.home()).quarantine(sha256, reason)

    async def presigned_url(
        self,
        sha256: str,
        expires: int,
        *,
        disposition: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        home = await self.home()
        return await home.presigned_url(
            sha256, expires, disposition=disposition, content_type=content_type
        )

    @contextlib.asynccontextmanager
    async def source(self, sha256: str) -> AsyncIterator[Path]:
        await self._prune()
        temp = self.staging_dir / f"fetch-{uuid.uuid4().hex}.tmp"
        kept = self._kept.get(sha256)
        try:
            # A name of its own for the decode: the kept one may go while it runs.
            if kept is None or not await self.run(_link, kept[0], temp):
                await self._fetch(sha256, temp)
            yield temp
        finally:
            await self.run(temp.unlink, True)

    async def _fetch(self, sha256: str, temp: Path) -> None:
        file: BinaryIO = await self.run(open, temp, "xb")
        chunks = self.read(sha256)
        try:
            async for chunk in chunks:
                await self.run(file.write, chunk)
        except BlobMissing:
            raise FileNotFoundError(f"no blob {sha256} in {self.location.url()}") from None
        finally:
            await aclose(chunks)
            await self.run(file.close)

    # gc's graveyard (s3_graveyard.py) --------------------------------------------------

    async def _graveyard(self) -> S3Graveyard:
        return S3Graveyard(await self.home())

    async def bury(self, sha256: str) -> str | None:
        return await (await self._graveyard()).bury(sha256)

    async def unbury(self, grave: str) -> bool:
        return await (await self._graveyard()).unbury(grave)

    async def discard(self, grave: str) -> None:
        await (await self._graveyard()).discard(grave)

    async def graves(self, older_than: float) -> list[str]:
        return await (await self._graveyard()).graves(older_than)

    async def changed_at(self, sha256: str) -> float | None:
        return await (await self._graveyard()).changed_at(sha256)
