"""tus uploads in progress: their rows, writers, locks and progress reporters.

The protocol's rules (headers, offsets, lengths, checksums) live in the tus
handler; this service owns the state that outlives one request:

- the catalog row: length, durable offset, metadata, expiry, outcome;
- the staged file `DATA/tmp/tus/<id>` and, while the process lives, a writer on
  it whose running digests mean bytes are hashed once, as they stream in;
- one writer at a time per upload, across every process sharing the data folder
  (`begin` refuses a second with 423; removal and the sweeps skip it): a lock file
  per upload (upload_locks.py), held from `begin` until the transfer ends;
- one progress reporter per upload (the library's, as for every transport), so
  that throttling spans requests.

A finished upload goes through the library's one ingest like any other; the
upload's file stays this service's to keep or drop.

Offsets are durable: bytes are fsynced before their offset is recorded (the catalog
row is the offset every process answers), and a writer resumed after a restart, or on
another process, first cuts its file back to the recorded offset, under the lock. A
writer this process kept between requests is only reused if the file is as it left it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .. import errors
from ..catalog import Catalog, UploadRecord, User
from ..storage import BlobStore, ResumableWriter, StorageFull
from ..storage.home import StorageUnavailable
from .library import LibraryService
from .transfers import Live, Transfer
from .upload_locks import UPLOAD_ID_RE, FileState, UploadLocks, file_state
from .upload_sweep import sweep_orphans

log = logging.getLogger(__name__)

T = TypeVar("T")

SHA256_HEX_RE = re.compile(r"\A[0-9a-fA-F]{64}\Z")
FIELD = "tus"
# A writer unused this long is let go at the next gc: its running digests are rebuilt
# from the file (read once) if its client ever comes back.
IDLE_WRITER = 600.0
# Expired rows, and staged files, are looked at this many at a time.
EXPIRY_BATCH = 500


def metadata_value(metadata: Mapping[str, str], key: str) -> str | None:
    """A metadata value decoded (base64, then UTF-8 with replacement), or None."""
    raw = metadata.get(key)
    if raw is None:
        return None
    return base64.b64decode(raw).decode("utf-8", "replace")


def expected_sha256(metadata: Mapping[str, str]) -> str | None:
    """The whole file's SHA-256 the client announced, if any (validated at creation)."""
    value = metadata_value(metadata, "sha256")
    return None if value is None else value.lower()


@dataclass(frozen=True)
class ExpiryReport:
    expired: int
    orphan_files: int


class UploadService:
    def __init__(
        self,
        catalog: Catalog,
        store: BlobStore,
        library: LibraryService,
        folder: Path,
        executor: Executor,
        expiry: float,
        *,
        max_open: int = 200,
        max_staged: int = 16 * 1024**3,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._library = library
        self.folder = folder
        self._executor = executor
        self.expiry = expiry
        self.max_open = max_open
        self.max_staged = max_staged
        self._live: dict[str, Live] = {}
        self._locks = UploadLocks(folder)
        self._background: set[asyncio.Task[None]] = set()
        folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, upload_id: str) -> Path:
        if not UPLOAD_ID_RE.match(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.folder / upload_id

    async def _run_io(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # the rows ----------------------------------------------------------------

    async def create(self, user: User, length: int, metadata: Mapping[str, str]) -> UploadRecord:
        """A new upload, unless the user already has `max_open` unfinished ones, or
        they declare `max_staged` bytes in all with this one (429)."""
        now = time.time()
        upload = UploadRecord(
            id=secrets.token_urlsafe(16),
            user_id=user.id,
            length=length,
            offset=0,
            metadata=dict(metadata),
            created_at=now,
            expires_at=now + self.expiry,
        )
        try:
            held = await self._catalog.add_upload_within(upload, self.max_open, self.max_staged)
        except StorageFull:
            raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
        if held is not None:
            raise errors.ApiError(
                errors.TOO_MANY_UPLOADS,
                f"You have {held.count} unfinished uploads declaring {held.length} bytes; "
                f"at most {self.max_open} uploads and {self.max_staged} bytes may be "
                "unfinished at once. Finish or delete some (DELETE), or wait for them to "
                "expire.",
                retry_after=60,
            )
        return upload

    async def _find(self, user: User, upload_id: str) -> UploadRecord:
        """The caller's upload, expired or not; someone else's is as unknown as no upload."""
        upload = None
        if UPLOAD_ID_RE.match(upload_id):
            upload = await self._catalog.get_upload(upload_id)
        if upload is None or upload.user_id != user.id:
            raise errors.ApiError(errors.UPLOAD_NOT_FOUND)
        return upload

    async def get(self, user: User, upload_id: str) -> UploadRecord:
        upload = await self._find(user, upload_id)
        if upload.expires_at <= time.time():
            raise errors.ApiError(errors.UPLOAD_EXPIRED)
        return upload

    # writing -----------------------------------------------------------------

    async def begin(self, user: User, upload_id: str) -> Transfer:
        """Take the upload's lock (423 if taken) with a writer at its durable offset."""
        upload = await self.get(user, upload_id)
        if upload.complete:
            return Transfer(self, user, upload, None)
        if not self._lock(upload.id):
            raise errors.ApiError(errors.UPLOAD_LOCKED)
        try:
            # Read again under the lock: a request that held it, here or in another
            # process, may have moved the upload on.
            upload = await self.get(user, upload_id)
            if upload.complete:
                self._release(upload.id)
                return Transfer(self, user, upload, None)
            live = self._live.get(upload.id)
            if live is None:
                reporter = self._library.reporter(user, upload.id, upload.length)
                live = self._live[upload.id] = Live(reporter)
            if live.writer is not None and (
                live.writer.size != upload.offset or live.seen != self._file_state(upload.id)
            ):
                # Another process wrote (or cut) the file since: its digests are stale.
                live.writer = None
            if live.writer is None:
                live.writer, upload = await self._resume(upload)
            live.writer.mark()
            live.used_at = time.monotonic()
        except BaseException as error:
            # Gone meanwhile: whoever removed it removed its lock file, which this
            # request may have just made again.
            gone = isinstance(error, errors.ApiError) and error.kind is errors.UPLOAD_NOT_FOUND
            self._release(upload.id, remove=gone)
            raise
        return Transfer(self, user, upload, live)

    # the lock ----------------------------------------------------------------

    def _lock(self, upload_id: str) -> bool:
        """Take the upload's lock, unless a request of this or any process holds it."""
        return self._locks.take(upload_id)

    def _release(self, upload_id: str, *, remove: bool = False) -> None:
        if not self._locks.holds(upload_id):
            return
        live = self._live.get(upload_id)
        if live is not None and live.writer is not None:
            live.seen = self._file_state(upload_id)  # what the writer's digests describe
        self._locks.release(upload_id, remove=remove)

    def _file_state(self, upload_id: str) -> FileState | None:
        return file_state(self.path_for(upload_id))

    async def _resume(self, upload: UploadRecord) -> tuple[ResumableWriter, UploadRecord]:
        """A writer on the staged file as recorded (after a restart: bytes past it are cut)."""
        writer = await self._store.resume_writer(self.path_for(upload.id), upload.offset)
        if writer.size != upload.offset:
            # Fewer bytes on disk than recorded: only a crash during ingest does this.
            # Say so truthfully; the client sends the rest again.
            log.warning(
                "upload %s: %d bytes on disk, %d recorded; resuming from what is on disk",
                upload.id,
                writer.size,
                upload.offset,
            )
            moved = await self._catalog.set_upload_offset(upload.id, writer.size, upload.expires_at)
            if moved is None:
                raise errors.ApiError(errors.UPLOAD_NOT_FOUND)
            upload = moved
        return writer, upload

    async def _keep(self, upload: UploadRecord, writer: ResumableWriter) -> UploadRecord:
        try:
            await writer.sync()
            kept = await self._catalog.set_upload_offset(
                upload.id, writer.size, time.time() + self.expiry
            )
        except StorageFull:
            # Bytes past the recorded offset are cut when the upload resumes.
            raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
        if kept is None:
            raise errors.ApiError(errors.UPLOAD_NOT_FOUND)
        return kept

    async def _complete(
        self, user: User, upload: UploadRecord, writer: ResumableWriter
    ) -> UploadRecord:
        live = self._live[upload.id]
        try:
            try:
                blob = await writer.finish()
            except StorageFull:
                raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
            expected = expected_sha256(upload.metadata)
            if expected is not None and blob.sha256 != expected:
                raise errors.ApiError(
                    errors.CHECKSUM_MISMATCH,
                    "The file's SHA-256 is not the sha256 in Upload-Metadata; "
                    "the upload was discarded.",
                )
            filename = metadata_value(upload.metadata, "filename")
            if filename is None:
                filename = metadata_value(upload.metadata, "name") or ""
            # The writer stays this service's: what a failure leaves of it is decided here.
            ingested = await self._library.ingest_one(user, writer, filename, FIELD)
        except BaseException as error:
            if isinstance(error, errors.ApiError) and error.kind is errors.INSUFFICIENT_STORAGE:
                # Not the upload's fault: it stays at its durable offset (this request's
                # bytes are cut, freeing their room) and resumes once there is space.
                await self._back_to_durable(upload, writer)
                raise
            if isinstance(error, StorageUnavailable):
                # Nor is an object store that does not answer: nothing was acknowledged,
                # the staged bytes stay, and the upload resumes from its durable offset.
                await self._back_to_durable(upload, writer)
                raise errors.ApiError(
                    errors.STORAGE_UNAVAILABLE, retry_after=error.retry_after
                ) from error
            await writer.abort()
            await self._drop(upload.id)
            self._live.pop(upload.id, None)
            self._release(upload.id, remove=True)
            live.reporter.failed(error)
            raise
        self._live.pop(upload.id, None)
        # The staged name goes (the blob is a second name of the same file): nothing may
        # resume writing to it.
        await writer.abort()
        expires_at = time.time() + self.expiry
        try:
            done = await self._catalog.complete_upload(
                upload.id, ingested.image.sha256, ingested.duplicate, expires_at
            )
        except StorageFull:
            # The photo is in the library all the same: say so; only the row lags.
            log.warning("upload %s: done, but its row could not record it (disk full)", upload.id)
            done = dataclasses.replace(
                upload,
                offset=upload.length,
                image_sha256=ingested.image.sha256,
                duplicate=ingested.duplicate,
                expires_at=expires_at,
            )
        if done is None:
            raise errors.ApiError(errors.UPLOAD_NOT_FOUND)
        live.reporter.done([ingested], batch=False)
        return done

    async def _back_to_durable(self, upload: UploadRecord, writer: ResumableWriter) -> None:
        try:
            await writer.rewind()
        except OSError:
            # Its file went into the store before the catalog failed: resuming starts over.
            log.warning("upload %s: its file is gone; it resumes from the start", upload.id)

    def _forget_writer(self, upload_id: str) -> None:
        live = self._live.get(upload_id)
        if live is not None:
            live.writer = None

    def interrupted(self, transfer: Transfer, *, keep: bool) -> None:
        """The client went away mid-request: keep what arrived, or drop it, in the background."""
        task = asyncio.get_running_loop().create_task(self._end(transfer, keep))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def abandon(self, upload_id: str, transfer: Transfer | None) -> None:
        """Drop an upload whose creation failed or was cut short, in the background."""
        task = asyncio.get_running_loop().create_task(self._abandon(upload_id, transfer))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _abandon(self, upload_id: str, transfer: Transfer | None) -> None:
        try:
            if transfer is not None:
                await transfer.discard()
            await self._remove_unless_busy(upload_id)
        except Exception:
            log.exception("dropping the abandoned upload %s", upload_id)

    async def _end(self, transfer: Transfer, keep: bool) -> None:
        try:
            if keep:
                await transfer.keep()
            else:
                await transfer.discard()
        except Exception:
            log.exception("ending the interrupted transfer of upload %s", transfer.upload.id)

    # ending ------------------------------------------------------------------

    async def terminate(self, user: User, upload_id: str) -> None:
        """DELETE: the upload's file and row are removed (423 while it is being written)."""
        upload = await self._find(user, upload_id)
        if not await self._remove_unless_busy(upload.id):
            raise errors.ApiError(errors.UPLOAD_LOCKED)

    async def _remove_unless_busy(self, upload_id: str, *, expired_by: float | None = None) -> bool:
        """Remove an upload no request is writing (and, if asked, only if still expired)."""
        # Hold the lock while removing, so that no request (of any process) resumes the
        # file meanwhile.
        if not self._lock(upload_id):
            return False
        gone = False
        try:
            if expired_by is not None:
                # A request that just ended may have pushed the expiry back.
                upload = await self._catalog.get_upload(upload_id)
                if upload is None or upload.expires_at > expired_by:
                    gone = upload is None
                    return False
            self._live.pop(upload_id, None)
            await self._drop(upload_id)
            gone = True
        finally:
            # The lock file goes last, while held: a request that opened it meanwhile
            # sees it was removed, takes a new one and finds no upload.
            self._release(upload_id, remove=gone)
        return True

    async def _drop(self, upload_id: str) -> None:
        # File first, then row: a crash in between leaves a row whose file is missing,
        # which resumes from zero, rather than a file that nothing refers to.
        await self._run_io(self.path_for(upload_id).unlink, True)
        await self._catalog.delete_upload(upload_id)

    async def expire(self, batch: int = EXPIRY_BATCH) -> ExpiryReport:
        """Remove uploads past their expiry, and staged files no upload owns, `batch`
        rows or files at a time."""
        now = time.time()
        removed = 0
        after: tuple[float, str] | None = None
        while True:
            expired = await self._catalog.expired_uploads(now, after, batch)
            for upload in expired:
                if await self._remove_unless_busy(upload.id, expired_by=now):
                    removed += 1
            if len(expired) < batch:
                break
            after = (expired[-1].expires_at, expired[-1].id)
        idle_since = time.monotonic() - IDLE_WRITER
        for upload_id, live in list(self._live.items()):
            if not self._locks.holds(upload_id) and live.used_at < idle_since:
                del self._live[upload_id]
        orphans = await sweep_orphans(self.folder, self._catalog, self._locks, batch, self._run_io)
        return ExpiryReport(removed, orphans)

    async def close(self) -> None:
        """Let interrupted transfers finish recording what they received; let go of files."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        for upload_id, live in list(self._live.items()):
            if live.writer is not None:
                try:
                    await live.writer.sync()  # bytes past the recorded offset are cut on resume
                except Exception:
                    log.exception("closing the file of upload %s", upload_id)
        self._live.clear()
        for upload_id in self._locks.held():
            self._release(upload_id)
