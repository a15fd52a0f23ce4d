"""A person's library: ingest, browse, trash, restore, purge, and collect garbage.

Ingest goes through `ingest()` (see `ingest.py`): `check` reads bytes already on
disk in the staging area (not empty, a photo or a video, metadata read: a video's by a
decoding worker, `video_facts.py`), `commit_all` puts a request's files in the store
and the catalog together, or none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import BinaryIO

from .. import errors, imaging
from ..catalog import BlobRecord, Catalog, Damage, HashField, ImageRecord, User
from ..storage import BlobStore, BlobWriter, StorageFull
from .collect import Collector
from .cursors import SHA256_RE, Month, decode_cursor, encode_cursor, month_cursor
from .domain_events import ImageAdded, ImageDeleted, ImageRestored
from .events import EventHub
from .ingest import Ingest, Ingested, Staged, UploadReporter
from .originals import CheckedOriginal, open_checked, stored_damage
from .thumbnails import Thumbnails
from .video_facts import NotAVideo, probe_video

log = logging.getLogger(__name__)

# \Z, not $: a $ also matches before a trailing newline.
MD5_RE = re.compile(r"^[0-9a-fA-F]{32}\Z")
MAX_FILENAME = 255
STALE_STAGING = 6 * 3600.0
MAX_PAGE = 500
DEFAULT_PAGE = 100
MAX_CHECK = 5000
# A file's name when it came without one: its format, lower-cased, unless named here.
EXTENSIONS = {"MATROSKA": "mkv"}


@dataclass(frozen=True)
class Page:
    items: list[ImageRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class GcReport:
    trash_expired: int
    blobs_removed: int
    orphan_files: int
    thumbnails_removed: int
    staging_removed: int


@dataclass(frozen=True)
class RecoveryReport:
    staging_removed: int
    thumbnail_temp_removed: int
    thumbnails_rescheduled: int


def clean_filename(name: str, fallback: str) -> str:
    """The last path component, printable, at most 255 characters."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    return name[:MAX_FILENAME] or fallback


def check_id(image_id: str) -> str:
    if not SHA256_RE.match(image_id):
        raise errors.ApiError(errors.INVALID_ID)
    return image_id


def check_md5(md5: str) -> str:
    if not MD5_RE.match(md5):
        raise errors.ApiError(errors.INVALID_MD5)
    return md5.lower()


class LibraryService:
    def __init__(
        self,
        catalog: Catalog,
        store: BlobStore,
        thumbnails: Thumbnails,
        metadata_executor: Executor,
        events: EventHub,
        max_pixels: int,
        trash_days: float = 30.0,
        decode_budget: int = imaging.DEFAULT_BUDGET,
        gc_grace: float = 3600.0,
    ) -> None:
        self._catalog = catalog
        self._events = events
        self._store = store
        self.thumbnails = thumbnails
        # Not the thumbnails' executor: an upload's answer waits for its metadata, and
        # behind a queue of thumbnails it would wait for all of them.
        self._metadata = metadata_executor
        self._max_pixels = max_pixels
        self._decode_budget = decode_budget
        thumbnails.on_settled = self._announce_all
        self.on_committed: Callable[[BlobRecord], None] | None = None  # video previews
        self._announcing: set[asyncio.Task[None]] = set()
        # Its protocol and ingest's (`commit_all`) keep an entry's file in place
        # whatever the order their steps run in, here or in another process.
        self.collector = Collector(catalog, store, thumbnails, trash_days * 86400, gc_grace)

    # ingest ------------------------------------------------------------------

    def open_writer(self) -> BlobWriter:
        """A writer to stage a file in; its opener drops it (`abort`) when done with it."""
        return self._store.open_writer()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[BlobWriter]:
        """`open_writer`, dropped on the way out."""
        writer = self.open_writer()
        try:
            yield writer
        finally:
            await writer.abort()

    def ingest(self, user: User, *, batch: bool = False) -> Ingest:
        """One request's files, committed all at once or not at all."""
        return Ingest(self, user, batch=batch)

    def reporter(self, user: User, upload_id: str, total: int | None) -> UploadReporter:
        """The sender of one upload's `upload.*` events, whatever carries it."""
        return UploadReporter(self._events, user.id, upload_id, total)

    async def ingest_one(
        self, user: User, writer: BlobWriter, filename: str, field: str = "photo"
    ) -> Ingested:
        """A single finished file: checked, placed and listed (the writer stays the caller's)."""
        ingest = self.ingest(user)
        await ingest.add(writer, filename, field)
        return (await ingest.commit()).ingested[0]

    async def check(self, writer: BlobWriter, filename: str, field: str) -> Staged:
        """Check finished bytes; raises ApiError when refused. Never drops the writer."""
        try:
            if writer.size == 0:
                raise errors.ApiError(errors.EMPTY_FILE)
            kind = imaging.sniff_media(writer.head)
            if kind is None:
                raise errors.ApiError(errors.UNSUPPORTED_MEDIA_TYPE)
            staged = await writer.finish()
            if imaging.is_video(kind):
                facts = await probe_video(self.thumbnails.pool, writer.staged_path, kind)
            else:
                meta = await asyncio.get_running_loop().run_in_executor(
                    self._metadata,
                    imaging.read_metadata,
                    writer.staged_path,
                    kind,
                    self._max_pixels,
                    self._decode_budget,
                )
                facts = dataclasses.asdict(meta)
        except StorageFull:
            raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
        except (imaging.NotAnImage, NotAVideo):
            # It starts like an image or a video, but holds none: not media at all.
            raise errors.ApiError(errors.UNSUPPORTED_MEDIA_TYPE) from None
        blob = BlobRecord(
            sha256=staged.sha256,
            md5=staged.md5,
            size=staged.size,
            thumbnail=None if facts["decodable"] else False,
            **facts,
        )
        extension = EXTENSIONS.get(blob.format, blob.format.lower())
        fallback = f"{staged.sha256[:16]}.{extension}"
        return Staged(writer, blob, clean_filename(filename, fallback), field)

    async def commit_all(self, user: User, staged: list[Staged]) -> list[Ingested]:
        """Place every file, list them all in one catalog transaction (all, or none),
        then make sure each file is still in place (see `collect.py`).

        Should a placement or the transaction fail, nothing is listed; the blobs placed
        before it are in no catalog entry, orphans that gc removes once the grace period
        has passed (so never one an ingest has placed and is about to record).
        """
        try:
            await self.place(staged)
            added = await self.record(user, staged)
            await self.verify(staged)
        except StorageFull:
            raise errors.ApiError(errors.INSUFFICIENT_STORAGE) from None
        ingested = [
            Ingested(image, duplicate, each.field)
            for each, (image, duplicate) in zip(staged, added, strict=True)
        ]
        for done in ingested:
            self.thumbnails.schedule(done.image.blob)
            if self.on_committed is not None:
                self.on_committed(done.image.blob)
        return ingested

    async def place(self, staged: list[Staged]) -> None:
        """Ingest's first step: each file under its sha256 (the staged copy kept)."""
        for each in staged:
            await self._store.commit(each.writer)

    async def record(self, user: User, staged: list[Staged]) -> list[tuple[ImageRecord, bool]]:
        """The second: the entries, in one transaction that also unmarks their blobs."""
        items = [(each.blob, each.filename) for each in staged]
        return await self._catalog.add_images(user.id, items, time.time())

    async def verify(self, staged: list[Staged]) -> None:
        """The last: a file another process's gc moved away before `record` is placed again."""
        for each in staged:
            sha256 = each.blob.sha256
            if not await self._store.exists(sha256):
                log.info("blob %s was collected while it was recorded: placed again", sha256)
                await self._store.commit(each.writer)

    def announce_later(self, user: User, ingested: list[Ingested]) -> None:
        """`image.added` once each photo is ready to show: its grid thumbnail made or known
        impossible. A blob still waiting for it is announced, to every library that holds
        it by then, when it settles (the catalog hands both sides the same truth)."""
        for done in ingested:
            image = done.image
            if not done.duplicate and image.blob.thumbnail is not None:
                # After the upload's own answer and events, as a settled one would be.
                task = asyncio.get_running_loop().create_task(self._announce_later(user, image))
                self._announcing.add(task)
                task.add_done_callback(self._announcing.discard)

    async def _announce_later(self, user: User, image: ImageRecord) -> None:
        record = await self._catalog.get_image(user.id, image.sha256)
        if record is not None:
            self._announce(record)

    def _announce(self, record: ImageRecord) -> None:
        self._events.publish(record.user_id, ImageAdded(record).plain())

    def _announce_all(self, records: list[ImageRecord]) -> None:
        for record in records:
            self._announce(record)

    # browse ------------------------------------------------------------------

    async def get(self, user: User, image_id: str, *, trashed: bool = False) -> ImageRecord:
        record = await self._catalog.get_image(user.id, check_id(image_id), trashed=trashed)
        if record is None:
            raise errors.ApiError(errors.IMAGE_NOT_FOUND)
        return record

    async def get_kept(self, user: User, image_id: str) -> ImageRecord:
        """In the library or in the trash: a photo whose files are still served."""
        check_id(image_id)
        record = await self._catalog.get_image(user.id, image_id)
        if record is None:
            record = await self._catalog.get_image(user.id, image_id, trashed=True)
        if record is None:
            raise errors.ApiError(errors.IMAGE_NOT_FOUND)
        return record

    async def find_by_md5(self, user: User, md5: str) -> ImageRecord:
        record = await self._catalog.find_by_md5(user.id, check_md5(md5))
        if record is None:
            raise errors.ApiError(errors.IMAGE_NOT_FOUND)
        return record

    async def page(
        self, user: User, limit: int, cursor: str | None, *, trashed: bool = False
    ) -> Page:
        after = decode_cursor(cursor) if cursor else None
        rows = await self._catalog.list_images(user.id, limit + 1, after, trashed=trashed)
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            key = last.deleted_ts if trashed else last.taken_ts
            assert key is not None
            next_cursor = encode_cursor((key, last.sha256))
        return Page(items, next_cursor)

    async def months(self, user: User) -> list[Month]:
        found = await self._catalog.months(user.id)
        return [Month(month, count, month_cursor(month)) for month, count in found]

    async def present(self, user: User, field: HashField, values: list[str]) -> set[str]:
        return await self._catalog.present(user.id, field, values)

    async def report_damage(self, record: ImageRecord, damage: Damage) -> None:
        """The file of a photo being served is not what the catalog says: never again as if fine."""
        log.error(
            "photo %s (%s of user %d) is damaged: its original is %s",
            record.sha256,
            record.filename,
            record.user_id,
            "missing" if damage == "missing" else "not the bytes it was stored as",
        )
        await self._catalog.mark_damaged(record.sha256, damage, time.time())

    async def damage_mended(self, record: ImageRecord) -> None:
        """Its file was found good after all (an upload mended it meanwhile)."""
        await self._catalog.clear_damage(record.sha256)

    async def check_original(self, record: ImageRecord) -> CheckedOriginal:
        """The original about to be served, after the damage rule (originals.py);
        ApiError IMAGE_DAMAGED when it is not the bytes it was stored as."""
        if record.blob.damaged:
            raise errors.ApiError(errors.IMAGE_DAMAGED)
        path = self._store.local_path(record.sha256)

        async def glance() -> tuple[BinaryIO | None, Damage | None]:
            if path is None:
                return None, await stored_damage(self._store, record)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._metadata, open_checked, path, record.blob.size)

        opened, damage = await glance()
        if damage is not None:
            await self.report_damage(record, damage)
            opened, damage = await glance()  # an upload mending it places the bytes first
            if damage is not None:
                raise errors.ApiError(errors.IMAGE_DAMAGED)
            await self.damage_mended(record)
        return CheckedOriginal(record, path, opened)

    # trash -------------------------------------------------------------------

    async def trash(self, user: User, image_id: str) -> ImageRecord:
        record = await self._catalog.trash(user.id, check_id(image_id), time.time())
        if record is None:
            raise errors.ApiError(errors.IMAGE_NOT_FOUND)
        self._events.publish(user.id, ImageDeleted(record.sha256).plain())
        return record

    async def restore(self, user: User, image_id: str) -> ImageRecord:
        record = await self._catalog.restore(user.id, check_id(image_id))
        if record is None:
            raise errors.ApiError(errors.IMAGE_NOT_FOUND)
        self._events.publish(user.id, ImageRestored(record).plain())
        return record

    async def purge(self, user: User, image_id: str) -> None:
        """Gone from the library at once; its bytes (if no one else has them) go at the
        first gc after the grace period."""
        if not await self._catalog.purge(user.id, check_id(image_id), time.time()):
            raise errors.ApiError(errors.IMAGE_NOT_FOUND)

    # garbage -----------------------------------------------------------------

    async def collect_garbage(self) -> GcReport:
        """Empty old trash, then remove what nothing refers to (see `collect.py`)."""
        done = await self.collector.run()
        thumbs = done.thumbnails_removed
        thumbs += await self.thumbnails.remove_temp_files(STALE_STAGING)
        staging = await self._store.clean_staging(STALE_STAGING)
        return GcReport(done.trash_expired, done.blobs_removed, done.orphan_files, thumbs, staging)

    async def recover(self) -> RecoveryReport:
        """Before serving: finish or clear what a crash left half-done.

        Other processes may be serving from the same data folder (and taking uploads)
        meanwhile: only what no live process holds is removed. That is every staging
        folder whose lock is free (its process is gone), and every thumbnail temp file
        no live writer holds; files older versions staged straight in `tmp/` only once
        stale, as such a version may still be writing them. Nothing of this process's
        own is in flight yet: what it staged so far goes too. Thumbnails a crash cut
        short are made again.
        """
        staging = await self._store.clean_staging(0)
        temp = await self.thumbnails.remove_temp_files(0)
        pending = await self._catalog.count_pending_thumbnails()
        self.thumbnails.resume()
        return RecoveryReport(staging, temp, pending)
