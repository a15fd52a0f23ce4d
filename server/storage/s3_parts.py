"""What S3BlobHome is made on: its errors, and large objects written or copied in parts.

Parts are read from the staged file in order (SHA-256 runs over the whole file) and
sent `concurrency` at a time, each with its Content-MD5, so memory stays at about
(concurrency + 1) parts whatever the file's size; any failure aborts the upload.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from . import BlobMissing
from .home import StorageUnavailable

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

T = TypeVar("T")

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # S3's minimum is 5 MiB; the last part may be smaller
MAX_PARTS = 10_000
COPY_LIMIT = 5 * 1024 * MIB  # CopyObject's limit: above it, a multipart copy
COPY_PART = 512 * MIB
MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
BUSY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable"}
)
# Content-MD5, and the payload's SHA-256 in the signature (signed over plain http).
CHECKSUM_CODES = frozenset({"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"})
TRANSIENT = (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class S3Parts:
    """The client, the bucket, the error mapping and the multipart routines."""

    _client: S3Client
    bucket: str
    _executor: Executor | None
    _part_size: int
    _concurrency: int
    _copy_limit: int
    _copy_part: int
    _retry_after: int

    @contextlib.contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        """The store's answers as BlobMissing and StorageUnavailable (after the retries)."""
        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in MISSING_CODES:
                raise BlobMissing(name) from None
            if status >= 500 or code in BUSY_CODES:
                raise self.unavailable(f"{code or status} for {name}") from error
            if code in CHECKSUM_CODES:  # the bytes changed on the way: nothing was kept
                raise self.unavailable(f"the store refused {name}: checksum mismatch") from error
            raise
        except TRANSIENT as error:
            raise self.unavailable(f"{type(error).__name__} for {name}: {error}") from error

    def unavailable(self, why: str) -> StorageUnavailable:
        return StorageUnavailable(f"object storage unavailable: {why}", self._retry_after)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _upload_part(
        self, key: str, upload: str, number: int, data: bytes, md5: str, sha256: str
    ) -> CompletedPartTypeDef:
        with self._errors(sha256):
            answer = await self._client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload,
                PartNumber=number,
                Body=data,
                ContentMD5=md5,
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def _put_multipart(self, staged: Path, key: str, sha256: str, size: int) -> None:
        part_size = max(self._part_size, -(-size // MAX_PARTS))
        with self._errors(sha256):
            upload = (await self._client.create_multipart_upload(Bucket=self.bucket, Key=key))[
                "UploadId"
            ]
        hasher = hashlib.sha256()
        done: list[CompletedPartTypeDef] = []
        pending: set[asyncio.Task[CompletedPartTypeDef]] = set()
        file: BinaryIO = await self._run(open, staged, "rb")
        try:
            number = 0
            while True:
                # Parts are read in order (SHA-256 runs over the file), sent `concurrency`
                # at a time: memory stays at (concurrency + 1) parts.
                data = await self._run(file.read, part_size)
                if not data:
                    break
                # SHA-256 and MD5 side by side on two threads (hashlib lets go of the GIL).
                _, md5 = await asyncio.gather(
                    self._run(hasher.update, data), self._run(content_md5, data)
                )
                number += 1
                while len(pending) >= self._concurrency:
                    finished, pending = await asyncio.wait(
                        pending, return_when=asyncio.FIRST_COMPLETED
                    )
                    done.extend(task.result() for task in finished)
                pending.add(
                    asyncio.create_task(self._upload_part(key, upload, number, data, md5, sha256))
                )
                del data
            done.extend(await asyncio.gather(*pending))
            pending.clear()
            if hasher.hexdigest() != sha256:
                raise ValueError(f"{staged} does not hash to {sha256}")
            done.sort(key=lambda part: part["PartNumber"])
            with self._errors(sha256):
                await self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
                )
        except BaseException:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._abort_upload(key, upload)
            raise
        finally:
            await self._run(file.close)

    async def _abort_upload(self, key: str, upload: str) -> None:
        # Best effort, and not cut short by a cancellation: parts left behind cost space
        # until the bucket's lifecycle rule (AbortIncompleteMultipartUpload) removes them.
        with contextlib.suppress(*TRANSIENT, ClientError):
            await asyncio.shield(
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            )

    async def _copy(self, source: str, target: str, size: int, sha256: str) -> None:
        copy_source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": source}
        if size <= self._copy_limit:
            with self._errors(sha256):
                await self._client.copy_object(
                    Bucket=self.bucket, Key=target, CopySource=copy_source
                )
            return
        part = max(self._copy_part, -(-size // MAX_PARTS))
        with self._errors(sha256):
            upload = (await self._client.create_multipart_upload(Bucket=self.bucket, Key=target))[
                "UploadId"
            ]
        try:
            parts: list[CompletedPartTypeDef] = []
            for number, offset in enumerate(range(0, size, part), start=1):
                last = min(size, offset + part) - 1
                with self._errors(sha256):
                    answer = await self._client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=target,
                        UploadId=upload,
                        PartNumber=number,
                        CopySource=copy_source,
                        CopySourceRange=f"bytes={offset}-{last}",
                    )
                parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
            with self._errors(sha256):
                await self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            await self._abort_upload(target, upload)
            raise
