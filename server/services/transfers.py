"""One request's turn at writing a tus upload (`Transfer`), and what the process keeps
about an upload between its requests (`Live`). `UploadService` hands them out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors
from ..catalog import UploadRecord, User
from ..storage import ResumableWriter, StorageFull
from .ingest import UploadReporter
from .upload_locks import FileState

if TYPE_CHECKING:
    from .uploads import UploadService

log = logging.getLogger(__name__)


@dataclass
class Live:
    """What the process keeps about an upload between its requests."""

    reporter: UploadReporter
    writer: ResumableWriter | None = None
    used_at: float = 0.0  # time.monotonic() of the last request that wrote
    # The staged file as the writer left it (UploadService._file_state): if it differs
    # at the next request, another process wrote it and the writer is rebuilt.
    seen: FileState | None = None


class Transfer:
    """One request's turn at writing an upload; it holds the upload's lock until it ends.

    It ends exactly once: by `keep` (the bytes so far become durable, and once they
    are the whole file it goes to the library) or by `discard` (the bytes since it
    began are dropped). A transfer of a finished upload holds no lock and writes
    nothing.
    """

    def __init__(
        self, service: UploadService, user: User, upload: UploadRecord, live: Live | None
    ) -> None:
        self.upload = upload
        self.user = user
        self._service = service
        self._live = live
        # Writes, and the one ending, never overlap: a connection can close while a
        # chunk is still being written.
        self._io = asyncio.Lock()
        self._ended = live is None
        self._failed = False  # a write failed: what the writer holds is not to be kept

    @property
    def complete(self) -> bool:
        return self.upload.complete

    @property
    def start(self) -> int:
        """The durable offset when this transfer began: where its bytes go."""
        return self.upload.offset

    @property
    def offset(self) -> int:
        """The offset with the bytes received so far."""
        writer = self._writer_or_none()
        return self.upload.offset if writer is None else writer.size

    @property
    def received(self) -> int:
        return self.offset - self.start

    @property
    def room(self) -> int:
        """How many more bytes this upload takes."""
        return self.upload.length - self.offset

    def _writer_or_none(self) -> ResumableWriter | None:
        return None if self._live is None else self._live.writer

    def _writer(self) -> ResumableWriter:
        writer = self._writer_or_none()
        if writer is None:
            raise RuntimeError(f"upload {self.upload.id} has no writer")
        return writer

    async def write(self, chunk: bytes) -> None:
        async with self._io:
            if self._ended:
                raise RuntimeError(f"the transfer of upload {self.upload.id} has ended")
            writer = self._writer()
            try:
                await writer.write(chunk)
            except BaseException as error:
                self._failed = True
                if isinstance(error, StorageFull):
                    raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
                raise
        assert self._live is not None
        self._live.reporter.progress(writer.size)

    async def keep(self) -> UploadRecord:
        """Make the bytes received durable and record the new offset; once they are
        the whole file, ingest it as the library does any upload.

        Ingesting leaves no staged file behind; when it fails, the upload is forgotten
        too, `upload.failed` is published and the error raised.
        """
        if self._failed:
            await self.discard()
            return self.upload
        async with self._io:
            if self._ended:
                return self.upload
            self._ended = True
            try:
                if self.room == 0:
                    self.upload = await self._service._complete(
                        self.user, self.upload, self._writer()
                    )
                else:
                    self.upload = await self._service._keep(self.upload, self._writer())
            except BaseException:
                # The writer may be ahead of the recorded offset: forget it, so that the
                # next request resumes from the file cut back to the durable offset.
                self._service._forget_writer(self.upload.id)
                raise
            finally:
                self._release()
            return self.upload

    async def discard(self) -> None:
        """Drop what this transfer wrote: the file and digests go back to where it began."""
        async with self._io:
            if self._ended:
                return
            self._ended = True
            try:
                if self.received or self._failed:
                    await self._writer().rewind()
            except Exception:
                log.exception("rewinding upload %s failed; it resumes from disk", self.upload.id)
                self._service._forget_writer(self.upload.id)
            finally:
                self._release()

    def _release(self) -> None:
        if self._live is not None:
            # A finished upload's lock file goes with its staged file.
            self._service._release(self.upload.id, remove=self.upload.complete)
