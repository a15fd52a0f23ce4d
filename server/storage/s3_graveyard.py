"""gc's graveyard on object storage: `graveyard/<sha256>.<random>` beside `blobs/`.

The same protocol as the local graveyard (local_graveyard.py, services/collect.py), on
an object store where nothing is renamed: a burial is a server-side copy to the grave,
checked, then the blob's deletion; putting back is a copy the other way, unless an
object is under the blob's name by then (the same bytes, by their name). An ingest
that finds its blob gone between those steps places it again (`LibraryService.verify`),
and one that skipped it (HEAD: there) has recorded it before gc looks again, which puts
it back: the same cases the local rename covers. Times are the store's (LastModified).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from . import SHA256_RE, BlobMissing
from .s3 import S3BlobHome


class S3Graveyard:
    def __init__(self, home: S3BlobHome) -> None:
        self._home = home
        self.prefix = f"{home.location.prefix}graveyard/"

    def _key(self, grave: str) -> str:
        if "/" in grave or not SHA256_RE.match(grave.split(".", 1)[0]):
            raise ValueError(f"not a grave: {grave!r}")
        return self.prefix + grave

    async def bury(self, sha256: str) -> str | None:
        home = self._home
        source = home.key(sha256)
        try:
            size = (await home.stat_key(source, sha256)).size
        except BlobMissing:
            return None
        grave = f"{sha256}.{uuid.uuid4().hex}"
        target = self._key(grave)
        try:
            await home._copy(source, target, size, sha256)
        except BlobMissing:
            return None  # removed meanwhile (another collector)
        if (await home.stat_key(target, sha256)).size != size:
            raise home.unavailable(f"the buried copy of {sha256} is incomplete")
        await home.delete(sha256)
        return grave

    async def unbury(self, grave: str) -> bool:
        home = self._home
        sha256 = grave.split(".", 1)[0]
        source = self._key(grave)
        try:
            size = (await home.stat_key(source, grave)).size
        except BlobMissing:
            return False  # another collector settled it
        restored = False
        if not await home.exists(sha256):
            await home._copy(source, home.key(sha256), size, sha256)
            restored = True
        await self.discard(grave)
        return restored

    async def discard(self, grave: str) -> None:
        home = self._home
        with home._errors(grave):
            await home._client.delete_object(Bucket=home.bucket, Key=self._key(grave))

    async def graves(self, older_than: float) -> list[str]:
        home = self._home
        cutoff = time.time() - older_than
        found: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": home.bucket, "Prefix": self.prefix}
            if token:
                params["ContinuationToken"] = token
            with home._errors(self.prefix):
                answer = await home._client.list_objects_v2(**params)
            for item in answer.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                ours = SHA256_RE.match(name.split(".", 1)[0]) and "/" not in name
                if ours and item["LastModified"].timestamp() <= cutoff:
                    found.append(name)
            token = answer.get("NextContinuationToken")
            if not answer.get("IsTruncated") or not token:
                return found

    async def changed_at(self, sha256: str) -> float | None:
        try:
            return (await self._home.stat_key(self._home.key(sha256), sha256)).modified
        except BlobMissing:
            return None
