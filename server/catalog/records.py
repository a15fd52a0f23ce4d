"""The catalog's records: what is known about photos, people, devices and uploads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ..storage import StorageFull


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | float) -> str:
    if isinstance(moment, float | int):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def sort_time(taken_at: str | None, fallback: float) -> float:
    """Seconds since the epoch for ordering; a time without offset counts as UTC."""
    if taken_at:
        try:
            moment = datetime.fromisoformat(taken_at)
        except ValueError:
            return fallback
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return fallback


class CatalogTooNew(RuntimeError):
    """The catalog was written by a newer Tubei; opening it could damage it."""


@dataclass(frozen=True)
class User:
    id: int
    name: str


@dataclass(frozen=True)
class Device:
    id: int
    user_id: int
    name: str
    created_at: str
    last_seen_at: str | None


Damage = Literal["missing", "mismatch"]
"""The file is gone, or its bytes no longer hash to its name."""

MediaKind = Literal["photo", "video"]
"""What a blob is to its viewer: a still image, or a video (played, with a poster)."""


PreviewState = Literal["made", "unneeded", "failed"]
"""A video's playable preview (H.264 MP4): made; not needed (the original plays on
phones); or none can be made. None: a photo, or a video whose preview is still to come."""


@dataclass(frozen=True)
class BlobRecord:
    sha256: str
    md5: str
    size: int
    format: str
    mime: str
    width: int | None
    height: int | None
    orientation: int | None
    taken_at: str | None
    camera_make: str | None
    camera_model: str | None
    has_gps: bool
    decodable: bool
    thumbnail: bool | None  # None: not made yet; False: cannot be made
    damage: Damage | None = None  # what scrub (or a request) found wrong with the file
    exif: bool | None = None  # None: stored before Tubei recorded it; None for a video
    kind: MediaKind = "photo"
    duration: float | None = None  # seconds; None for a photo, or a video whose is unknown
    codec: str | None = None  # a video's (FFmpeg's name: h264, hevc, vp9...)
    preview: PreviewState | None = None  # a video's playable preview (None: still to come)
    # A motion photo's video part: where its MP4 starts in the original, and its bytes
    # (None for anything else; the still is the photo, its thumbnails the still's).
    motion_offset: int | None = None
    motion_length: int | None = None
    # Apple's ContentIdentifier: a Live Photo's still (maker note) and its MOV (QuickTime
    # metadata) carry the same one, and are paired by it in a library that holds both.
    live_id: str | None = None

    @property
    def damaged(self) -> bool:
        return self.damage is not None


@dataclass(frozen=True)
class Owner:
    """Whose a blob is: a user and the filename they gave it."""

    user: str
    filename: str
    trashed: bool


class CatalogFull(StorageFull):
    """The catalog could not write: its disk is full. The write was rolled back."""


class CatalogUnavailable(RuntimeError):
    """The catalog's database cannot be reached (or did not answer in time). Nothing of
    the call was written; the caller may try again later."""

    retry_after = 5


@dataclass(frozen=True)
class ImageRecord:
    """One photo in one person's library (or trash), with its blob."""

    blob: BlobRecord
    user_id: int
    filename: str
    uploaded_at: str
    taken_ts: float
    deleted_at: str | None
    deleted_ts: float | None
    # The other half of a Live Photo in the same library (not trashed): the MOV of a
    # still, the still of a MOV; found by their blobs' live_id whenever the entry is read.
    live_partner: str | None = None

    @property
    def sha256(self) -> str:
        return self.blob.sha256

    @property
    def taken_at(self) -> str:
        return self.blob.taken_at or self.uploaded_at


@dataclass(frozen=True)
class OpenUploads:
    """A user's unfinished uploads: how many, and the bytes they declare in all."""

    count: int
    length: int


@dataclass(frozen=True)
class UploadRecord:
    """A tus upload: its declared length, what is durably received, and how it ended."""

    id: str
    user_id: int
    length: int
    offset: int
    metadata: Mapping[str, str]  # Upload-Metadata as sent: key -> base64 value ("" for none)
    created_at: float
    expires_at: float
    image_sha256: str | None = None  # set once the bytes are in the library
    duplicate: bool | None = None

    @property
    def complete(self) -> bool:
        return self.image_sha256 is not None


Position = tuple[float, str]
"""Where a page ends: (sort time, sha256) of its last item."""

HashField = Literal["sha256", "md5"]
