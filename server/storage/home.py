"""The final home of blobs, and the store of derived images: what every backend offers.

Staging is always local (writers, tus files, the path Pillow reads); once a staged
file's sha256 is known it is put in its final home, which may be the local disk or an
object store. Derived images (thumbnails, previews) are small, named by a key, and
can be made again: a store of their own, beside the blobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from . import BlobMissing

__all__ = ["BlobHome", "BlobMissing", "DerivedStore", "StorageUnavailable", "check_range"]

# Keys a derived image may have: `<sha256>/<variant>.jpg` and the like.
DERIVED_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_./")


class StorageUnavailable(Exception):
    """The store did not answer, or kept failing, after the retries it is allowed.

    Nothing was acknowledged: the caller keeps its staged bytes and says 503 with
    `Retry-After: retry_after`.
    """

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BlobHome(Protocol):
    """Where blobs live once their sha256 is known."""

    async def put(self, staged: Path, sha256: str) -> bool:
        """Store the local file `staged`, whose bytes hash to `sha256`, under that name.

        Returns only once the store holds the whole object: True when it was written,
        False when an object of that name and size was there already (nothing sent).
        The staged file may be moved into the store; whoever staged it removes what is
        left (`unlink(missing_ok=True)`).
        """

    async def exists(self, sha256: str) -> bool: ...

    async def size(self, sha256: str) -> int:
        """The stored object's length; BlobMissing when there is none."""

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes `start` to `end` (exclusive; None: to the end), in chunks of bounded size.

        Raises BlobMissing (when iterated) if there is no such blob, ValueError for a
        range outside it.
        """

    async def delete(self, sha256: str) -> None:
        """Remove the blob; nothing happens when there is none."""

    def pages(self, page_size: int = 1000, after: str = "") -> AsyncIterator[list[str]]:
        """Every stored sha256 greater than `after`, in order, `page_size` at most a page."""

    async def rehash(self, sha256: str, progress: Callable[[int], None] | None = None) -> str:
        """The SHA-256 of the stored bytes, read again in bounded memory.

        BlobMissing when there is none; `progress` gets the bytes read so far.
        """

    async def quarantine(self, sha256: str, reason: str) -> str:
        """Move the blob aside (never delete it); where it went. BlobMissing if none."""

    async def presigned_url(
        self,
        sha256: str,
        expires: int,
        *,
        disposition: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A URL that serves the blob for `expires` seconds without us, where there is one
        (answered with this Content-Disposition and Content-Type, when given)."""

    async def close(self) -> None: ...


class DerivedStore(Protocol):
    """Small bytes made from blobs (thumbnails, previews), by key."""

    async def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there, whole or not at all."""

    async def get(self, key: str) -> bytes:
        """BlobMissing when there is nothing under `key`."""

    async def delete(self, key: str) -> None: ...


def check_range(size: int, start: int, end: int | None) -> int:
    """The end of the range [start, end) of an object of `size` bytes; ValueError if outside."""
    stop = size if end is None else end
    if not 0 <= start <= stop <= size:
        raise ValueError(f"bytes {start}-{stop} are not within 0-{size}")
    return stop


def check_derived_key(key: str) -> str:
    if (
        not key
        or not set(key) <= DERIVED_KEY_CHARS
        or key.startswith("/")
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise ValueError(f"not a derived-image key: {key!r}")
    return key
