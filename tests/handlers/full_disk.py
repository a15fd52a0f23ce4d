"""Disks that fill up, for the full-disk tests: a store out of room, a catalog that cannot grow,
and what the tests check once they have."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from typing import Any, BinaryIO, cast

from server.catalog import BlobRecord, ImageRecord, UploadRecord
from server.catalog.sqlite import SQLiteCatalog
from server.config import Settings
from server.services.events import Mailbox
from server.storage.local import LocalBlobStore, LocalBlobWriter
from tests.conftest import Api, multipart
from tests.handlers.helpers import API, files_in, ids_in, sha256
from tests.handlers.tus_client import next_event

IMAGES = f"{API}/images"


async def post_photos(
    api: Api, files: list[tuple[str, str, bytes]], upload_id: str | None = None
) -> tuple[int, Any]:
    body, content_type = multipart(files)
    headers = {"Content-Type": content_type}
    if upload_id is not None:
        headers["X-Upload-Id"] = upload_id
    response = await api.fetch(IMAGES, "POST", body, headers)
    return response.code, json.loads(response.body)


async def still_downloads(api: Api, data: bytes) -> None:
    """The photo is listed, described and served byte-exact (a full disk changes nothing)."""
    assert sha256(data) in await ids_in(api)
    code, item = await api.json(f"{IMAGES}/{sha256(data)}")
    assert code == 200 and "damaged" not in item, item
    response = await api.fetch(f"{IMAGES}/{sha256(data)}/original")
    assert response.code == 200, response.body
    assert response.body == data


def assert_full(code: int, body: Any) -> None:
    assert code == 507, body
    assert body["error"]["code"] == "insufficient_storage", body
    assert "disk is full" in body["error"]["message"], body


def blobs_in(settings: Settings) -> list[str]:
    return [path.name for path in files_in(settings.blobs_dir)]


async def failed_event(mailbox: Mailbox, upload_id: str) -> dict[str, Any]:
    while True:
        event = await next_event(mailbox)
        if event["type"] == "upload.failed" and event["upload_id"] == upload_id:
            return event


# injected: a store that runs out of room, a catalog that cannot grow -------------


class Disk:
    """The free bytes of a pretend disk; None for plenty."""

    free: int | None = None


class BudgetFile:
    """A staged file that takes bytes while the disk has room, then fails as a full disk does."""

    def __init__(self, file: BinaryIO, disk: Disk) -> None:
        self._file = file
        self._disk = disk

    def write(self, data: bytes) -> int:
        free = self._disk.free
        if free is None:
            return self._file.write(data)
        room = min(free, len(data))
        self._file.write(data[:room])  # what fitted reached the file
        self._disk.free = free - room
        if room < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return room


class FullWriter(LocalBlobWriter):
    def _open(self) -> BinaryIO:
        store = self._store
        assert isinstance(store, FullStore)
        return cast(BinaryIO, BudgetFile(super()._open(), store.disk))


class FullStore(LocalBlobStore):
    writer_type = FullWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disk = Disk()


class FullCatalog(SQLiteCatalog):
    """The writes named in `full` meet SQLite's own SQLITE_FULL.

    The transaction first does its real work, then asks for more pages than the
    catalog may have (`max_page_count` set to what it has): SQLite fails it with
    "database or disk is full" and rolls all of it back, as a full disk would.
    """

    full: frozenset[str] = frozenset()

    def _connect(self) -> sqlite3.Connection:
        db = super()._connect()
        db.execute("CREATE TABLE IF NOT EXISTS ballast (b BLOB)")
        return db

    def _fill_up(self, write: str) -> None:
        if write in self.full:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {pages}")
            try:
                self._db.execute("INSERT INTO ballast VALUES (zeroblob(1000000))")
            finally:
                self._db.execute("PRAGMA max_page_count = 1073741823")

    def _add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        added = super()._add_image(user_id, blob, filename, now)
        self._fill_up("add_image")
        return added

    def _add_upload(self, upload: UploadRecord) -> None:
        super()._add_upload(upload)
        self._fill_up("add_upload")

    def _complete_upload(self, *args: Any) -> UploadRecord | None:
        done = super()._complete_upload(*args)
        self._fill_up("complete_upload")
        return done
