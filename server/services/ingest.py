"""The one way a photo or a video comes in, whatever carried it (multipart, tus, the
seed's API).

An `Ingest` is one request's files, all or nothing: each file is checked as it is
added (not empty, a photo or a video, its metadata read), and `commit` places every
accepted one in the store and records them all in one catalog transaction. When any step fails,
nothing is listed and nothing is announced; a blob placed before the failure is in
no catalog entry, an orphan that gc removes.

Whoever opened a writer drops it: neither checking nor committing ever aborts one,
so a multipart request drops its staged files when it ends and a tus upload keeps
its file until it decides what a failure leaves of it.

An `UploadReporter` is the one sender of `upload.*` for every transport: throttled
progress, then exactly one `upload.done` or `upload.failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import errors
from ..catalog import BlobRecord, ImageRecord, User
from ..storage import BlobWriter
from .domain_events import Stored, UploadDone, UploadFailed, UploadProgress
from .events import EventHub, Throttle

if TYPE_CHECKING:
    from .library import LibraryService


@dataclass(frozen=True)
class Staged:
    """A file checked and ready to commit; its writer stays its opener's."""

    writer: BlobWriter
    blob: BlobRecord
    filename: str
    field: str


@dataclass(frozen=True)
class Ingested:
    image: ImageRecord
    duplicate: bool
    field: str


@dataclass(frozen=True)
class Rejected:
    field: str
    filename: str
    error: errors.ApiError


@dataclass
class Result:
    ingested: list[Ingested] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class UploadReporter:
    """One transfer's `upload.*` events: throttled progress, then one final event."""

    def __init__(self, hub: EventHub, user_id: int, upload_id: str, total: int | None) -> None:
        self._hub = hub
        self._user_id = user_id
        self.upload_id = upload_id
        self.total = total
        self._throttle = Throttle()
        self.finished = False

    def progress(self, received: int) -> None:
        if not self.finished and self._throttle.due(received, self.total):
            event = UploadProgress(self.upload_id, received, self.total)
            self._hub.publish(self._user_id, event.plain())

    def done(self, ingested: list[Ingested], *, batch: bool) -> None:
        if self.finished:
            return
        self.finished = True
        stored = tuple(Stored(i.image, i.duplicate) for i in ingested)
        self._hub.publish(self._user_id, UploadDone(self.upload_id, stored, batch).plain())

    def failed(self, error: BaseException) -> None:
        if self.finished:
            return
        self.finished = True
        if not isinstance(error, errors.ApiError):
            error = errors.ApiError(errors.INTERNAL)
        failure = UploadFailed(self.upload_id, error.kind.code, error.message)
        self._hub.publish(self._user_id, failure.plain())


class Ingest:
    """One request's files: `add` each as it arrives, then `commit` them all, or none."""

    def __init__(self, library: LibraryService, user: User, *, batch: bool) -> None:
        self._library = library
        self._user = user
        self._batch = batch
        self._staged: list[Staged] = []
        self.result = Result()
        self._committed = False

    @property
    def empty(self) -> bool:
        return not self._staged and not self.result.rejected

    async def add(self, writer: BlobWriter, filename: str, field: str) -> None:
        """Check a file whose bytes have all arrived.

        A file refused for what it is (empty, not a photo or a video: a 4xx) is listed in
        `result.rejected` and the others go on; a server-side failure (507) raises.
        """
        try:
            self._staged.append(await self._library.check(writer, filename, field))
        except errors.ApiError as error:
            if error.status >= 500:
                raise
            self.result.rejected.append(Rejected(field, filename, error))

    async def commit(self, reporter: UploadReporter | None = None) -> Result:
        """Place and record every accepted file at once; raises if none was accepted.

        `reporter`, when given, sends `upload.done` once the photos are listed.
        """
        if self._committed:
            raise RuntimeError("an ingest is committed once")
        self._committed = True
        if self.empty:
            raise errors.ApiError(errors.NO_FILES)
        if not self._staged:
            raise self.result.rejected[0].error
        staged, self._staged = self._staged, []
        self.result.ingested = await self._library.commit_all(self._user, staged)
        if reporter is not None:
            reporter.done(self.result.ingested, batch=self._batch)
        self._library.announce_later(self._user, self.result.ingested)
        return self.result
