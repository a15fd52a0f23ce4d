"""What is known about photos, people and their devices: protocols by aggregate.

`Accounts`, `Library` and `Uploads` are what services ask of the catalog; `Throttles`
and `Claims` (in `coordination`) what several processes coordinate through; `Catalog`
is all of them. Two backends take the same calls: SQLite (`catalog.sqlite`, the
default, one file under --data) and PostgreSQL (`catalog.postgres`, for several
processes). Every call is a coroutine so that no backend blocks the event loop.
Records and the one list of each record's columns live in `records` and `fields`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from .coordination import Claims, Keys, Throttles, Window
from .records import (
    BlobRecord,
    CatalogFull,
    CatalogTooNew,
    CatalogUnavailable,
    Damage,
    Device,
    HashField,
    ImageRecord,
    MediaKind,
    OpenUploads,
    Owner,
    Position,
    PreviewState,
    UploadRecord,
    User,
    iso,
    sort_time,
    utc_now,
)

__all__ = [
    "Accounts",
    "BlobRecord",
    "Catalog",
    "CatalogFull",
    "CatalogTooNew",
    "CatalogUnavailable",
    "Claims",
    "Damage",
    "Device",
    "HashField",
    "ImageRecord",
    "Keys",
    "Library",
    "MediaKind",
    "OpenUploads",
    "Owner",
    "Position",
    "PreviewState",
    "Previews",
    "Throttles",
    "UploadRecord",
    "Uploads",
    "User",
    "Window",
    "iso",
    "sort_time",
    "utc_now",
]


class Accounts(Protocol):
    """People, their tokens and devices, pairing codes and WeChat logins."""

    async def ensure_user(self, name: str) -> User: ...

    async def add_token(self, user_id: int, token_hash: str, device: str) -> Device: ...

    async def user_for_token(self, token_hash: str) -> tuple[User, Device] | None: ...

    async def add_pairing_code(
        self, code_hash: str, user_id: int, expires_at: float, max_waiting: int | None = None
    ) -> bool:
        """False when an unexpired code with this hash exists already, or (given
        `max_waiting`) when the user has that many unused, unexpired codes waiting. The
        count and the new code are one step, whatever else makes codes for the user at
        once, in this process or another; every waiting code counts, those made
        without `max_waiting` too."""

    async def live_pairing_codes(self, user_id: int, now: float) -> list[float]:
        """When each of this user's unused, unexpired pairing codes expires, soonest first."""

    async def redeem_pairing_code(self, code_hash: str, now: float) -> User | None:
        """Use a code once: its user if it is known, unused and unexpired."""

    async def pairing_guess_failed(self, now: float, limit: int) -> int:
        """A wrong guess against every live code; void those that have outlived `limit`
        wrong guesses, and say how many."""

    async def find_user(self, name: str) -> User | None: ...

    async def get_user(self, user_id: int) -> User | None: ...

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


class Library(Protocol):
    """Blobs and the entries that put them in a library or its trash; damage found by
    scrub; the derived-image queue (thumbnails to make, with their attempts)."""

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

    async def months(self, user_id: int) -> list[tuple[str, int]]:
        """The library's months ("YYYY-MM", UTC, by sort time) newest first, with their counts."""

    async def present(self, user_id: int, field: HashField, values: Iterable[str]) -> set[str]:
        """Which of these hashes the user has, sound, in the library (not trash, not damaged)."""

    async def trash(self, user_id: int, sha256: str, now: float) -> ImageRecord | None: ...

    async def restore(self, user_id: int, sha256: str) -> ImageRecord | None: ...

    async def purge(self, user_id: int, sha256: str, now: float) -> bool:
        """Remove a trashed entry for good. A blob left with no entry is marked
        unreferenced at `now` (its row stays until `drop_unreferenced_blobs`)."""

    async def expire_trash(self, deleted_before: float, now: float) -> int:
        """Purge every entry trashed before `deleted_before`, marking blobs as `purge` does."""

    async def is_referenced(self, sha256: str) -> bool: ...

    async def mark_unreferenced_blobs(self, now: float) -> int:
        """Mark, at `now`, blobs with no entry that carry no mark (two removals of a blob's
        last entries at once may each see the other's entry), and unmark blobs that have
        one; how many were marked."""

    async def drop_unreferenced_blobs(self, cutoff: float, limit: int = 500) -> list[str]:
        """Forget up to `limit` blobs marked unreferenced at or before `cutoff`, in one
        statement that deletes a row only if it is still marked so and no entry refers to
        it; the hashes deleted, for the store to delete. Adding an entry unmarks its blob
        in the same transaction, so a blob an ingest records is never among them."""

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


class Previews(Protocol):
    """Videos' playable previews: which are still to come, and the attempts at each."""

    async def pending_previews(self, limit: int) -> list[BlobRecord]:
        """Sound, decodable videos whose preview is not settled yet, oldest first."""

    async def attempt_preview(self, sha256: str) -> int:
        """Count a transcode about to start; how many since the preview was last settled."""

    async def settle_preview(self, sha256: str, state: PreviewState | None) -> list[ImageRecord]:
        """Record the preview's state (None: to be made again) and clear its attempts;
        the library entries of the blob (not trashed), to announce it to."""

    async def preview_entries(self, sha256: str) -> list[ImageRecord]:
        """The blob's library entries (not trashed), whoever holds them."""


class Uploads(Protocol):
    """tus uploads: declared length, durable offset, and how each ended."""

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


class Catalog(Accounts, Library, Previews, Uploads, Throttles, Claims, Keys, Protocol):
    """All of it, for what needs every aggregate (the services' holder, gc, scrub)."""

    async def reclaim_space(self) -> int:
        """Hand free pages back to the file system; how many."""

    async def start(self) -> None:
        """Reach the database and migrate it (SQLite did so on opening):
        CatalogUnavailable, in one sentence, when it cannot be reached."""

    async def close(self) -> None: ...
