"""Where original bytes live: a small protocol, one module per backend.

A blob is named by the SHA-256 of its bytes. Bytes are first staged (hashed as
they stream in), then committed under their name, or dropped when that name is
already stored. A staged file can also be written over several requests (tus):
such a writer is resumed on its file at a durable offset.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class StagedBlob:
    sha256: str
    md5: str
    size: int


class BlobWriter(Protocol):
    """Bytes on their way into the store."""

    @property
    def head(self) -> bytes:
        """The first bytes written (up to the store's sniff window)."""

    @property
    def size(self) -> int: ...

    @property
    def staged_path(self) -> Path:
        """A local file holding the bytes written so far (for metadata)."""

    async def write(self, data: bytes) -> None: ...

    async def finish(self) -> StagedBlob:
        """Flush and fsync; the digests of everything written."""

    async def abort(self) -> None:
        """Drop the staged bytes; safe to call more than once."""


class ResumableWriter(BlobWriter, Protocol):
    """A writer that outlives one request: durable checkpoints, and a way back to one."""

    async def sync(self) -> None:
        """Make everything written so far durable, and let go of the file until the next write."""

    def mark(self) -> None:
        """Remember this point (size, digests, head) for `rewind`."""

    async def rewind(self) -> None:
        """Drop what was written since `mark`: the file and the digests go back to that point."""


class BlobStore(Protocol):
    def open_writer(self) -> BlobWriter: ...

    async def resume_writer(self, path: Path, offset: int) -> ResumableWriter:
        """A writer on the staged file `path` holding its first `offset` bytes, digests rebuilt.

        Bytes past `offset` are cut off. A file shorter than `offset` (or none) is
        taken as it is: the writer's `size` says how much there really is.
        """

    async def commit(self, writer: BlobWriter) -> bool:
        """Put finished bytes in place under their sha256, durably, keeping the staged
        copy until the writer is dropped (to place them again; see services/collect.py).

        The staged copy, hashed as it was written, takes the place of any file already
        stored under that name: uploading a photo again repairs a blob whose file went
        missing or bad. Returns False when a file was there already.
        """

    async def exists(self, sha256: str) -> bool: ...

    async def delete(self, sha256: str) -> None: ...

    def local_path(self, sha256: str) -> Path | None:
        """A file that serves the blob directly, when the backend has one."""

    async def size(self, sha256: str) -> int:
        """The stored blob's length; BlobMissing when there is none."""

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes `start` to `end` (exclusive; None: to the end), in chunks of bounded size.

        Raises BlobMissing (when iterated) if there is none, ValueError for a range
        outside it.
        """

    async def presigned_url(
        self,
        sha256: str,
        expires: int,
        *,
        disposition: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A URL that serves the blob for `expires` seconds without this server (with
        these response headers), where the backend has one; None on the local disk."""

    def source(self, sha256: str) -> AbstractAsyncContextManager[Path]:
        """A local file holding the blob's bytes while the context lasts (what a decoder
        reads): its own file on the local disk, a copy fetched from elsewhere. Raises
        FileNotFoundError when there is no such blob."""

    def all_blobs(self) -> AsyncIterator[str]:
        """Every stored blob's sha256, in order, listed a part at a time."""

    async def rehash(self, sha256: str, progress: Callable[[int], None] | None = None) -> str:
        """The SHA-256 of the bytes stored under `sha256`, read again in bounded memory.

        Raises BlobMissing when there is none. `progress` is called with the bytes read
        so far, on the caller's thread, as the reading goes on.
        """

    async def quarantine(self, sha256: str, reason: str) -> str:
        """Move a blob out of the store without deleting it; where it went.

        Raises BlobMissing when there is none.
        """

    async def clean_staging(self, older_than: float) -> int:
        """Remove this store's staged files untouched for `older_than` seconds, and what
        stores of processes now gone had staged; how many. Never what another live
        process has staged."""

    async def start(self) -> None:
        """Reach the store where it lives elsewhere (object storage: open the client and
        check the bucket, StorageUnavailable when it cannot be used); locally, nothing."""

    async def close(self) -> None:
        """Let go of what the store holds (the local one: its staging folder)."""

    # gc's side (see services/collect.py): a file is moved aside before it is deleted,
    # and put back should an ingest have recorded its blob again meanwhile.
    async def bury(self, sha256: str) -> str | None:
        """Move the blob's file aside (a grave); the grave's name, None when there is none."""

    async def unbury(self, grave: str) -> bool:
        """Put a grave's file back under its sha256 unless one is there; drop the grave.
        True when it was put back."""

    async def discard(self, grave: str) -> None:
        """Delete a grave's file for good."""

    async def graves(self, older_than: float) -> list[str]:
        """Graves left unsettled for `older_than` seconds (their collector stopped)."""

    async def changed_at(self, sha256: str) -> float | None:
        """When the blob's file was last placed or moved; None when there is none."""


class StorageFull(Exception):
    """The backend has no room left for the bytes being written."""


class BlobMissing(LookupError):
    """No blob is stored under this sha256."""
