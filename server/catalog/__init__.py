"""What is known about photos, people and their devices: a protocol and its records.

The embedded backend is SQLite (`catalog.sqlite`); a PostgreSQL one will take the
same calls. Every call is a coroutine so that no backend blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

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
    exif: bool | None = None  # None: stored before Tubei recorded it

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


class Catalog(Protocol):
    async def close(self) -> None: ...

    # people and devices
    async def ensure_user(self, name: str) -> User: ...

    async def add_token(self, user_id: int, token_hash: str, device: str) -> Device: ...

    async def user_for_token(self, token_hash: str) -> tuple[User, Device] | None: ...

    async def add_pairing_code(self, code_hash: str, user_id: int, expires_at: float) -> bool:
        """False when an unexpired code with this hash exists already."""

    async def redeem_pairing_code(self, code_hash: str, now: float) -> User | None:
        """Use a code once: its user if it is known, unused and unexpired."""

    async def pairing_guess_failed(self, now: float, limit: int) -> int:
        """A wrong guess against every live code; void those that have outlived `limit`
        wrong guesses, and say how many."""

    async def find_user(self, name: str) -> User | None: ...

    async def wechat_user(self, openid: str, names: Sequence[str]) -> User:
        """The user a WeChat openid maps to; on its first login, a new user under the
        first of `names` that is free."""

    async def devices(self, user_id: int | None = None) -> list[tuple[User, Device]]:
        """Devices whose token is not revoked (one user's, or everyone's), oldest first."""

    async def revoke_device(self, device_id: int, user_id: int | None, now: float) -> Device | None:
        """Revoke a device's token (only if it is this user's, when one is given); None when
        there is no such unrevoked device."""

    async def revoked_devices(self, device_ids: Iterable[int]) -> list[Device]:
        """Which of these devices have been revoked."""

    # the library
    async def add_image(
        self, user_id: int, blob: BlobRecord, filename: str, now: float
    ) -> tuple[ImageRecord, bool]:
        """Record the blob (once) and the user's entry; True when the user already had it.

        An entry in the trash comes back to the library and does not count as had.
        """

    async def add_images(
        self, user_id: int, items: Sequence[tuple[BlobRecord, str]], now: float
    ) -> list[tuple[ImageRecord, bool]]:
        """`add_image` for each (blob, filename), in order, in one transaction: all or none."""

    async def get_image(
        self, user_id: int, sha256: str, *, trashed: bool = False
    ) -> ImageRecord | None: ...

    async def find_by_md5(self, user_id: int, md5: str) -> ImageRecord | None: ...

    async def list_images(
        self, user_id: int, limit: int, after: Position | None, *, trashed: bool = False
    ) -> list[ImageRecord]:
        """Library: newest taken first. Trash: newest deleted first."""

    async def present(self, user_id: int, field: HashField, values: Iterable[str]) -> set[str]:
        """Which of these hashes the user has, sound, in the library (not trash, not damaged)."""

    async def trash(self, user_id: int, sha256: str, now: float) -> ImageRecord | None: ...

    async def restore(self, user_id: int, sha256: str) -> ImageRecord | None: ...

    async def purge(self, user_id: int, sha256: str) -> bool:
        """Remove a trashed entry for good."""

    async def expire_trash(self, deleted_before: float) -> int: ...

    async def is_referenced(self, sha256: str) -> bool: ...

    async def drop_unreferenced_blobs(self) -> list[str]:
        """Forget blobs no entry refers to; their hashes, for the store to delete."""

    async def known_blobs(self) -> set[str]: ...

    async def set_thumbnail(self, sha256: str, made: bool) -> None: ...

    async def pending_thumbnails(self, limit: int = -1) -> list[BlobRecord]:
        """Sound, decodable blobs whose thumbnails are not made yet, oldest first
        (at most `limit`; -1 for all)."""

    async def count_pending_thumbnails(self) -> int: ...

    async def attempt_thumbnail(self, sha256: str) -> int:
        """Count a decode about to start; how many have been counted since the last success."""

    async def settle_thumbnail(self, sha256: str, made: bool) -> list[ImageRecord]:
        """Record that the blob's thumbnails are made (or never will be). When this settles
        it for the first time: the library entries it completes, to announce."""

    async def thumbnail_succeeded(self, sha256: str) -> None:
        """A decode finished: its attempts start from nothing again."""

    # integrity (scrub)
    async def get_blob(self, sha256: str) -> BlobRecord | None: ...

    async def blobs_after(self, sha256: str, limit: int) -> list[BlobRecord]:
        """The next `limit` blobs whose sha256 sorts after `sha256` ("" for the first)."""

    async def blob_totals(self) -> tuple[int, int]:
        """How many blobs, and their bytes."""

    async def owners(self, sha256: str) -> list[Owner]:
        """Every library (and trash) entry of the blob, by user name."""

    async def mark_damaged(self, sha256: str, damage: Damage, now: float) -> bool:
        """Record damage (and when, if it is new); False when no such blob is known."""

    async def clear_damage(self, sha256: str) -> bool:
        """The file is good again; True when it had been marked damaged."""

    # tus uploads
    async def add_upload(self, upload: UploadRecord) -> None: ...

    async def get_upload(self, upload_id: str) -> UploadRecord | None: ...

    async def set_upload_offset(
        self, upload_id: str, offset: int, expires_at: float
    ) -> UploadRecord | None:
        """Record a durable offset (and the new expiry); None when the upload is gone."""

    async def complete_upload(
        self, upload_id: str, image_sha256: str, duplicate: bool, expires_at: float
    ) -> UploadRecord | None:
        """All bytes received and ingested: the offset becomes the length."""

    async def delete_upload(self, upload_id: str) -> bool: ...

    async def add_upload_within(
        self, upload: UploadRecord, max_open: int, max_bytes: int
    ) -> OpenUploads | None:
        """Add the upload unless its user would then have more than `max_open` unfinished
        uploads or declare more than `max_bytes` in them; what they hold when refused."""

    async def expired_uploads(
        self, now: float, after: tuple[float, str] | None = None, limit: int = 500
    ) -> list[UploadRecord]: ...

    async def known_uploads(self, ids: Sequence[str]) -> set[str]: ...

    async def upload_ids(self) -> set[str]: ...

    async def reclaim_space(self) -> int:
        """Hand free pages back to the file system; how many."""
