"""What happened, as the services say it: records and ids, no JSON shapes, no URLs.

A domain event travels through the hub in its plain form (`plain()`): a dict of
strings, numbers, booleans, lists and dicts, with `type` and, for progress, the
transfer's id, which is all the hub reads of it. The plain form crosses processes
as JSON (the Redis hub) and comes back whole; the edge (`server/views.py`) turns
it into what a client reads. Events that carry no record (`device.revoked`,
`resync`, `download.progress`) have a plain form that is already what a client
reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..catalog import BlobRecord, ImageRecord

Plain = dict[str, Any]

UPLOAD_PROGRESS = "upload.progress"
UPLOAD_DONE = "upload.done"
UPLOAD_FAILED = "upload.failed"
IMAGE_ADDED = "image.added"
IMAGE_DELETED = "image.deleted"
IMAGE_RESTORED = "image.restored"
VIDEO_PREVIEW = "video.preview"


def record_plain(record: ImageRecord) -> Plain:
    return dataclasses.asdict(record)


def record_from_plain(plain: Plain) -> ImageRecord:
    fields = dict(plain)
    blob = BlobRecord(**fields.pop("blob"))
    return ImageRecord(blob=blob, **fields)


@dataclass(frozen=True)
class UploadProgress:
    upload_id: str
    received: int
    total: int | None

    def plain(self) -> Plain:
        return {
            "type": UPLOAD_PROGRESS,
            "upload_id": self.upload_id,
            "received": self.received,
            "total": self.total,
        }


@dataclass(frozen=True)
class Stored:
    """One photo an upload put in the library, and whether the library had it already."""

    image: ImageRecord
    duplicate: bool


@dataclass(frozen=True)
class UploadDone:
    """An upload's photos are in the library; `batch`: it was one request of several files."""

    upload_id: str
    stored: tuple[Stored, ...]
    batch: bool

    def plain(self) -> Plain:
        return {
            "type": UPLOAD_DONE,
            "upload_id": self.upload_id,
            "stored": [
                {"image": record_plain(s.image), "duplicate": s.duplicate} for s in self.stored
            ],
            "batch": self.batch,
        }

    @classmethod
    def from_plain(cls, plain: Plain) -> UploadDone:
        stored = tuple(
            Stored(record_from_plain(s["image"]), bool(s["duplicate"])) for s in plain["stored"]
        )
        return cls(str(plain["upload_id"]), stored, bool(plain["batch"]))


@dataclass(frozen=True)
class UploadFailed:
    upload_id: str
    code: str
    message: str

    def plain(self) -> Plain:
        return {
            "type": UPLOAD_FAILED,
            "upload_id": self.upload_id,
            "error": {"code": self.code, "message": self.message},
        }


@dataclass(frozen=True)
class ImageAdded:
    """A photo is ready to show: its grid thumbnail is made, or known impossible."""

    image: ImageRecord

    def plain(self) -> Plain:
        return {"type": IMAGE_ADDED, "image": record_plain(self.image)}


@dataclass(frozen=True)
class ImageRestored:
    image: ImageRecord

    def plain(self) -> Plain:
        return {"type": IMAGE_RESTORED, "image": record_plain(self.image)}


@dataclass(frozen=True)
class ImageDeleted:
    sha256: str

    def plain(self) -> Plain:
        return {"type": IMAGE_DELETED, "id": self.sha256}


@dataclass(frozen=True)
class VideoPreviewProgress:
    """How far a video's preview has come (0 to 1 of its length)."""

    sha256: str
    progress: float

    def plain(self) -> Plain:
        return {"type": VIDEO_PREVIEW, "id": self.sha256, "progress": self.progress, "done": False}


@dataclass(frozen=True)
class VideoPreviewDone:
    """A video's preview is settled: made, or never to be (its record says which)."""

    image: ImageRecord

    def plain(self) -> Plain:
        return {
            "type": VIDEO_PREVIEW,
            "id": self.image.sha256,
            "progress": 1.0,
            "done": True,
            "image": record_plain(self.image),
        }
