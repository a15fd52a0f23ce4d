"""Blobs as files: `blobs/ab/cd/<sha256>`, fsynced and hard-linked from this store's own
staging folder, `tmp/staging-<pid>-<random>/` (see local_staging.py).

A stored blob is a second name of its staged file (the staged name goes when its
writer is dropped): an ingest that finds its blob moved away by another process's gc
places it again from the staged copy. So a staged file, once finished, is never
written again: it may be a blob's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from . import SHA256_RE, BlobMissing, StagedBlob, StorageFull
from .local_files import fsync_dir, place, unshare
from .local_graveyard import Graveyard, GraveyardStore
from .local_reads import LocalReads
from .local_staging import STAGED_SUFFIX, StagingArea, StagingFolder

__all__ = ["LocalBlobStore", "LocalBlobWriter", "fsync_dir"]

if TYPE_CHECKING:
    from hashlib import _Hash as Hash
else:
    Hash = object

T = TypeVar("T")

HEAD_BYTES = 4096
RESUME_BLOCK = 1024 * 1024
READ_BLOCK = 256 * 1024
# Bytes hashed per trip to the executor: progress shows, and other work gets a turn.
REHASH_STEP = 8 * 1024 * 1024
_REASON_RE = re.compile(r"\A[a-z]+\Z")


def _raise_full(error: OSError) -> None:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StorageFull(str(error)) from error


def _close_quietly(file: BinaryIO) -> None:
    # The error that matters was raised (or is being handled) already.
    with contextlib.suppress(OSError):
        file.close()


def _hash_step(file: io.FileIO, hasher: Hash, buffer: bytearray) -> int:
    """Hash up to REHASH_STEP more bytes of `file`, closing it at its end; how many."""
    view = memoryview(buffer)
    done = 0
    try:
        while done < REHASH_STEP:
            count = file.readinto(view)
            if not count:
                file.close()
                break
            hasher.update(view[:count])
            done += count
    except BaseException:
        file.close()
        raise
    return done


def _open_and_hash(path: Path, hasher: Hash, buffer: bytearray) -> tuple[io.FileIO, int]:
    """Open `path` and take the first step: a whole photo, most often, in one trip."""
    file = io.FileIO(path, "r")
    return file, _hash_step(file, hasher, buffer)


@dataclass(frozen=True)
class _Mark:
    size: int
    sha256: Hash
    md5: Hash
    head: bytes


class LocalBlobWriter:
    def __init__(self, store: StagingArea, path: Path | None = None) -> None:
        self._store = store
        self._path = path or store.staging_dir / f"{uuid.uuid4().hex}{STAGED_SUFFIX}"
        self._file: BinaryIO | None = None
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._head = bytearray()
        self._size = 0
        self._result: StagedBlob | None = None
        self._closed = False
        # The file exists on disk (later opens append to it), and its folder entry is durable.
        self._created = False
        self._entry_synced = False
        self._mark: _Mark | None = None

    @property
    def head(self) -> bytes:
        return bytes(self._head)

    @property
    def size(self) -> int:
        return self._size

    @property
    def staged_path(self) -> Path:
        return self._path

    def _open(self) -> BinaryIO:
        if self._file is None:
            # Closed in _finish, _sync, _rewind or _abort.
            if self._created:
                self._file = open(self._path, "ab")  # noqa: SIM115
            else:
                self._file = open(self._path, "xb")  # noqa: SIM115
                self._created = True
        return self._file

    def _write(self, data: bytes) -> None:
        try:
            self._open().write(data)
        except OSError as error:
            _raise_full(error)
            raise
        self._sha256.update(data)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("a finished writer's file may be a stored blob: never written")

    async def write(self, data: bytes) -> None:
        self._check_open()
        if not data:
            return
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self._size += len(data)
        # MD5 is the slowest step here (about 640 MB/s): it runs on a second thread
        # beside the write and SHA-256, as hashlib releases the GIL. Each hash object is
        # still updated by one thread at a time, chunk after chunk.
        await asyncio.gather(
            self._store.run(self._write, data), self._store.run(self._md5.update, data)
        )

    def _flush_and_close(self) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.flush()
            os.fsync(file.fileno())
        except OSError as error:
            _raise_full(error)
            raise
        finally:
            _close_quietly(file)

    def _finish(self) -> StagedBlob:
        self._open()  # an empty upload still leaves a (empty) file to commit or refuse
        try:
            self._flush_and_close()
        finally:
            self._closed = True
        return StagedBlob(self._sha256.hexdigest(), self._md5.hexdigest(), self._size)

    async def finish(self) -> StagedBlob:
        if self._result is None:
            self._result = await self._store.run(self._finish)
        return self._result

    def _abort(self) -> None:
        if self._file is not None and not self._closed:
            # Closing flushes what is buffered, which fails again on a full disk.
            _close_quietly(self._file)
            self._closed = True
        self._path.unlink(missing_ok=True)

    async def abort(self) -> None:
        await self._store.run(self._abort)

    @property
    def result(self) -> StagedBlob:
        if self._result is None:
            raise RuntimeError("finish() the writer before committing it")
        return self._result

    # resumable: one upload written over several requests ------------------------

    def _resume(self, offset: int) -> None:
        """Keep the file's first `offset` bytes (or what there is) and hash them again."""
        self._check_open()
        try:
            # Placed as a blob by an ingest that stopped short of letting go of it? The
            # blob keeps that inode; this name gets a copy of its own to write to.
            unshare(self._path, offset)
            file = open(self._path, "r+b")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with file:
            kept = min(offset, os.fstat(file.fileno()).st_size)
            if os.fstat(file.fileno()).st_size != kept:
                file.truncate(kept)
                os.fsync(file.fileno())
            remaining = kept
            while remaining:
                block = file.read(min(RESUME_BLOCK, remaining))
                if not block:
                    raise OSError(f"{self._path} shrank while it was read")
                remaining -= len(block)
                self._sha256.update(block)
                self._md5.update(block)
                if len(self._head) < HEAD_BYTES:
                    self._head += block[: HEAD_BYTES - len(self._head)]
        self._size = kept
        self._created = True
        self._entry_synced = True

    def _sync(self) -> None:
        if self._file is None:
            return
        self._flush_and_close()
        if not self._entry_synced:
            fsync_dir(self._path.parent)
            self._entry_synced = True

    async def sync(self) -> None:
        await self._store.run(self._sync)

    def mark(self) -> None:
        self._mark = _Mark(self._size, self._sha256.copy(), self._md5.copy(), bytes(self._head))

    def _rewind(self, mark: _Mark) -> None:
        file, self._file = self._file, None
        if file is not None:
            # Whatever is still buffered belongs to the bytes being dropped.
            _close_quietly(file)
        if self._created:
            # Finished, it may have been placed: the blob keeps those bytes, not this name.
            unshare(self._path, mark.size)
            os.truncate(self._path, mark.size)
        self._closed = False

    async def rewind(self) -> None:
        mark = self._mark
        if mark is None:
            raise RuntimeError("mark() the writer before rewinding it")
        await self._store.run(self._rewind, mark)
        self._result = None
        self._size = mark.size
        self._sha256, self._md5 = mark.sha256.copy(), mark.md5.copy()
        self._head = bytearray(mark.head)


class LocalBlobStore(LocalReads, GraveyardStore):
    """The embedded backend: one folder on the local disk.

    Uploads are staged in a folder of this store's own under `tmp_dir`, locked while the
    store is open: several processes (or stores) can share `tmp_dir`, and none of them
    ever removes what another one still living has staged. `close()` removes it.
    """

    writer_type: type[LocalBlobWriter] = LocalBlobWriter

    def __init__(
        self,
        root: Path,
        tmp_dir: Path,
        executor: ThreadPoolExecutor,
        quarantine_dir: Path | None = None,
        graveyard_dir: Path | None = None,
    ) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        self.quarantine_dir = quarantine_dir or root.parent / "quarantine"
        self.graveyard = Graveyard(graveyard_dir or root.parent / "graveyard")
        self._executor = executor
        root.mkdir(parents=True, exist_ok=True)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._staging = StagingFolder(tmp_dir)

    @property
    def staging_dir(self) -> Path:
        """Where this store's writers stage (resumed writers stay where their file is)."""
        return self._staging.path

    async def start(self) -> None:
        """Nothing to reach: the folder is on this disk."""

    async def close(self) -> None:
        """Remove this store's staging folder (and what is staged in it), and unlock it."""
        await self.run(self._staging.close)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def path_for(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def local_path(self, sha256: str) -> Path | None:
        return self.path_for(sha256)

    def open_writer(self) -> LocalBlobWriter:
        return self.writer_type(self)

    async def resume_writer(self, path: Path, offset: int) -> LocalBlobWriter:
        writer = self.writer_type(self, path)
        await self.run(writer._resume, offset)
        return writer

    def _commit(self, staged: Path, sha256: str) -> bool:
        final = self.path_for(sha256)
        # Replaced even when present: the file there may have gone bad, these bytes
        # were hashed as they were written. Same name, same bytes: nothing else changes.
        # A hard link, not a rename: the staged name stays, to place the bytes again
        # should gc move them away before the ingest has recorded them.
        new = not final.exists()
        created: list[Path] = []
        try:
            for folder in (final.parent.parent, final.parent):
                if not folder.exists():
                    folder.mkdir(exist_ok=True)
                    created.append(folder)
            place(staged, final)
            for folder in reversed(created):
                fsync_dir(folder.parent)
        except OSError as error:
            _raise_full(error)
            raise
        return new

    async def commit(self, writer: object) -> bool:
        assert isinstance(writer, LocalBlobWriter)
        return await self.run(self._commit, writer.staged_path, writer.result.sha256)

    async def exists(self, sha256: str) -> bool:
        return await self.run(self.path_for(sha256).exists)

    def _delete(self, sha256: str) -> None:
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return  # already gone (and maybe its folder too): nothing to make durable
        fsync_dir(path.parent)

    async def delete(self, sha256: str) -> None:
        await self.run(self._delete, sha256)

    def _folders(self) -> list[str]:
        return sorted(p.name for p in self.root.glob("??") if p.is_dir())

    def _list(self, folder: str) -> list[str]:
        names = (p.name for p in (self.root / folder).glob("??/*"))
        return sorted(name for name in names if SHA256_RE.match(name))

    async def all_blobs(self) -> AsyncIterator[str]:
        # One `ab/` folder at a time (1/256 of the store), so memory does not grow with it.
        for folder in await self.run(self._folders):
            for name in await self.run(self._list, folder):
                yield name

    async def rehash(self, sha256: str, progress: Callable[[int], None] | None = None) -> str:
        path = self.path_for(sha256)
        hasher = hashlib.sha256()
        buffer = bytearray(READ_BLOCK)
        try:
            file, read = await self.run(_open_and_hash, path, hasher, buffer)
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        try:
            while True:
                if progress is not None:
                    progress(read)
                if file.closed:
                    return hasher.hexdigest()
                read += await self.run(_hash_step, file, hasher, buffer)
        finally:
            if not file.closed:  # cancelled between steps
                await self.run(file.close)

    def _quarantine(self, sha256: str, reason: str) -> Path:
        if not _REASON_RE.match(reason):
            raise ValueError(f"not a quarantine reason: {reason!r}")
        source = self.path_for(sha256)
        folder = self.quarantine_dir / reason
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = folder / f"{sha256}.{stamp}"
        while target.exists():  # never over a file already there
            target = folder / f"{sha256}.{stamp}.{uuid.uuid4().hex[:8]}"
        try:
            os.rename(source, target)
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        fsync_dir(folder)
        fsync_dir(source.parent)
        return target

    async def quarantine(self, sha256: str, reason: str) -> str:
        return str(await self.run(self._quarantine, sha256, reason))

    async def clean_staging(self, older_than: float) -> int:
        """This store's staged files untouched for `older_than` seconds, the staging
        folders of processes gone (their lock is free), and files older versions staged
        straight in `tmp/` once stale: how many files were removed. tmp/tus/ is left alone."""
        return await self.run(self._staging.clean, older_than)
