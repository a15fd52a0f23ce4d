"""Blobs in an S3-compatible object store (AWS, Ceph RGW, MinIO, COS, OSS, R2).

Keys under the location's prefix: `blobs/<sha256>`, `derived/<key>`,
`quarantine/<reason>/<sha256>.<utc stamp>.<random>`. An object is written once, under
its final name, from the local staged file: HEAD first (an object of that name and size
is not sent again), one PUT up to `part_size`, a multipart upload above it. Every PUT
and part carries Content-MD5, which the store checks before it keeps the bytes
(x-amz-checksum-sha256 is not checked by every gateway: Ceph 16 ignores it); the file's
SHA-256 is computed on the way and must match its name. Timeouts, 5xx and SlowDown are
retried by botocore's standard retry mode (exponential backoff with jitter, bounded);
what still fails raises StorageUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from . import SHA256_RE, BlobMissing
from .home import check_derived_key, check_range
from .s3_config import S3Location
from .s3_parts import (
    COPY_LIMIT,
    COPY_PART,
    MIB,
    PART_SIZE,
    TRANSIENT,
    S3Parts,
    content_md5,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

READ_CHUNK = 256 * 1024
DERIVED_MAX = 64 * MIB
_REASON_RE = re.compile(r"\A[a-z]+\Z")


class ObjectStat(NamedTuple):
    size: int
    etag: str  # without its quotes: an MD5 in hex, or `<hex>-<parts>` for a multipart one
    modified: float  # the store's clock, seconds since the epoch


class S3BlobHome(S3Parts):
    """BlobHome on one bucket and prefix; `derived` stores derived images beside it."""

    def __init__(
        self,
        client: S3Client,
        location: S3Location,
        *,
        executor: Executor | None = None,
        part_size: int = PART_SIZE,
        concurrency: int = 2,
        attempts: int = 4,
        copy_limit: int = COPY_LIMIT,
        copy_part: int = COPY_PART,
        retry_after: int = 5,
    ) -> None:
        if part_size < 5 * MIB:
            raise ValueError("S3 parts are 5 MiB at least")
        self._client = client
        self.location = location
        self.bucket = location.bucket
        self._executor = executor
        self._part_size = part_size
        self._concurrency = concurrency
        self._attempts = attempts
        self._copy_limit = copy_limit
        self._copy_part = copy_part
        self._retry_after = retry_after
        self._stack: contextlib.AsyncExitStack | None = None
        self.derived = S3DerivedStore(self)

    @classmethod
    async def open(
        cls,
        location: S3Location,
        *,
        attempts: int = 4,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_connections: int = 16,
        sign_payload: bool | None = None,
        **options: Any,
    ) -> S3BlobHome:
        """A client on `location` (a pool of `max_connections`); close() it when done.

        `sign_payload`: whether the SigV4 signature covers the body's SHA-256 (None:
        botocore's choice, yes over http, no over https, where TLS and Content-MD5 guard
        the bytes).
        """
        s3_options: dict[str, Any] = {"addressing_style": location.addressing}
        if sign_payload is not None:
            s3_options["payload_signing_enabled"] = sign_payload
        config = AioConfig(
            region_name=location.region,
            s3=s3_options,
            signature_version="s3v4",
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
            # Content-MD5 is what gateways check; botocore's default CRC trailers
            # (aws-chunked bodies) are refused by older ones.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=location.endpoint,
                aws_access_key_id=location.access_key,
                aws_secret_access_key=location.secret_key,
                aws_session_token=location.session_token,
                config=config,
            )
        )
        home = cls(client, location, attempts=attempts, **options)
        home._stack = stack
        return home

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def check(self) -> None:
        """That the bucket is there and ours (at start-up): StorageUnavailable or ClientError."""
        with self._errors(self.bucket):
            await self._client.head_bucket(Bucket=self.bucket)

    # keys and errors ---------------------------------------------------------------

    def key(self, sha256: str) -> str:
        if not SHA256_RE.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return f"{self.location.prefix}blobs/{sha256}"

    async def _head(self, key: str, name: str) -> int:
        return (await self.stat_key(key, name)).size

    async def stat_key(self, key: str, name: str) -> ObjectStat:
        """The object's size, ETag and modification time (a HEAD); BlobMissing if none."""
        with self._errors(name):
            answer = await self._client.head_object(Bucket=self.bucket, Key=key)
        return ObjectStat(
            int(answer["ContentLength"]),
            str(answer.get("ETag", "")).strip('"'),
            answer["LastModified"].timestamp(),
        )

    # writing -------------------------------------------------------------------------

    async def put(self, staged: Path, sha256: str, md5: str | None = None) -> bool:
        """BlobHome.put; given the file's `md5` (hex), an object of the same size whose
        ETag is another MD5 (a single PUT's ETag is its MD5) is damaged: written over."""
        key = self.key(sha256)
        size = (await self._run(staged.stat)).st_size
        with contextlib.suppress(BlobMissing):
            stored = await self.stat_key(key, sha256)
            plain_etag = len(stored.etag) == 32 and "-" not in stored.etag
            if stored.size == size and not (md5 and plain_etag and stored.etag != md5):
                return False
        if size <= self._part_size:
            await self._put_single(staged, key, sha256)
        else:
            await self._put_multipart(staged, key, sha256, size)
        held = await self._head(key, sha256)  # acknowledged only once the store says so
        if held != size:
            raise self.unavailable(f"{sha256} holds {held} bytes, not {size}")
        return True

    def _read_whole(self, staged: Path, sha256: str) -> tuple[bytes, str]:
        data = staged.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"{staged} does not hash to {sha256}")
        return data, content_md5(data)

    async def _put_single(self, staged: Path, key: str, sha256: str) -> None:
        data, md5 = await self._run(self._read_whole, staged, sha256)
        with self._errors(sha256):
            await self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5)

    # reading -------------------------------------------------------------------------

    async def exists(self, sha256: str) -> bool:
        try:
            await self._head(self.key(sha256), sha256)
        except BlobMissing:
            return False
        return True

    async def size(self, sha256: str) -> int:
        return await self._head(self.key(sha256), sha256)

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        key = self.key(sha256)
        stop = check_range(await self._head(key, sha256), start, end)
        position, failures = start, 0
        while position < stop:
            with self._errors(sha256):  # botocore has retried the request itself already
                answer = await self._client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={position}-{stop - 1}"
                )
            body = answer["Body"]
            broken: BaseException | None = None
            try:
                async for chunk in body.iter_chunks(READ_CHUNK):
                    position += len(chunk)
                    yield chunk
            except TRANSIENT as error:
                broken = error
            finally:
                body.close()
            if position < stop:
                # Cut short on the way: go on from the byte reached, a bounded number of times.
                failures += 1
                if failures >= self._attempts:
                    why = f"reading {sha256} broke at byte {position} of {stop}: {broken!r}"
                    raise self.unavailable(why) from broken
                await asyncio.sleep(min(20.0, 2.0 ** (failures - 1)) * random.random())

    async def rehash(self, sha256: str, progress: Callable[[int], None] | None = None) -> str:
        hasher, read = hashlib.sha256(), 0
        async for chunk in self.read(sha256):
            await self._run(hasher.update, chunk)  # off the event loop, like the local store
            read += len(chunk)
            if progress is not None:
                progress(read)
        return hasher.hexdigest()

    async def pages(self, page_size: int = 1000, after: str = "") -> AsyncIterator[list[str]]:
        prefix = f"{self.location.prefix}blobs/"
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            params["MaxKeys"] = page_size
            if token:
                params["ContinuationToken"] = token
            elif after:
                params["StartAfter"] = prefix + after
            with self._errors(prefix):
                answer = await self._client.list_objects_v2(**params)
            names = [item["Key"][len(prefix) :] for item in answer.get("Contents", [])]
            page = [name for name in names if SHA256_RE.match(name)]
            if page:
                yield page
            token = answer.get("NextContinuationToken")
            if not answer.get("IsTruncated") or not token:
                return

    async def presigned_url(
        self,
        sha256: str,
        expires: int,
        *,
        disposition: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        if not 1 <= expires <= 7 * 24 * 3600:
            raise ValueError("a presigned URL lasts from 1 second to 7 days")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(sha256)}
        # The store answers with these headers in place of the object's own.
        if disposition is not None:
            params["ResponseContentDisposition"] = disposition
        if content_type is not None:
            params["ResponseContentType"] = content_type
        return await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires
        )

    # removing ------------------------------------------------------------------------

    async def delete(self, sha256: str) -> None:
        with self._errors(sha256):
            await self._client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    async def quarantine(self, sha256: str, reason: str) -> str:
        if not _REASON_RE.match(reason):
            raise ValueError(f"not a quarantine reason: {reason!r}")
        source = self.key(sha256)
        size = await self._head(source, sha256)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = f"{sha256}.{stamp}.{uuid.uuid4().hex[:8]}"  # never over one already there
        target = f"{self.location.prefix}quarantine/{reason}/{name}"
        await self._copy(source, target, size, sha256)
        if await self._head(target, sha256) != size:
            raise self.unavailable(f"the quarantined copy of {sha256} is incomplete")
        await self.delete(sha256)  # only once the copy is held
        return f"s3://{self.bucket}/{target}"


class S3DerivedStore:
    """DerivedStore under `derived/` beside the blobs, on the same client."""

    def __init__(self, home: S3BlobHome) -> None:
        self._home = home

    def _key(self, key: str) -> str:
        return f"{self._home.location.prefix}derived/{check_derived_key(key)}"

    async def put(self, key: str, data: bytes) -> None:
        home = self._home
        with home._errors(key):
            await home._client.put_object(
                Bucket=home.bucket, Key=self._key(key), Body=data, ContentMD5=content_md5(data)
            )

    async def get(self, key: str) -> bytes:
        home = self._home
        with home._errors(key):
            answer = await home._client.get_object(Bucket=home.bucket, Key=self._key(key))
            body = answer["Body"]
            try:
                if answer["ContentLength"] > DERIVED_MAX:
                    raise ValueError(f"derived image {key} is over {DERIVED_MAX} bytes")
                return await body.read()
            finally:
                body.close()

    async def delete(self, key: str) -> None:
        home = self._home
        with home._errors(key):
            await home._client.delete_object(Bucket=home.bucket, Key=self._key(key))
