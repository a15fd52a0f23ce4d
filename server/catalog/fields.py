"""Each record's columns, declared once: by the record's own dataclass fields.

A blob's metadata is its `BlobRecord`; the SELECTs, the INSERT and the reading of a row
back into a record of both backends take their column lists from here. A new field is
a field of the record and a migration of each backend's schema, nothing else.

Rows are read by column name (sqlite3.Row, psycopg's dict rows). SQLite stores truth
values as 0/1 and an upload's metadata as JSON text; `blob_from_row` and friends turn
them back into what the record declares, whichever backend the row came from.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from .records import BlobRecord, Damage, Device, ImageRecord, UploadRecord, iso

Row = Mapping[str, Any]


def _names(record: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record))


def _truths(record: type[Any]) -> frozenset[str]:
    hints = typing.get_type_hints(record)
    return frozenset(
        name for name, hint in hints.items() if bool in typing.get_args(hint) or hint is bool
    )


BLOB_FIELDS = _names(BlobRecord)
"""Every column of a blob a BlobRecord carries, in the record's order."""
_BLOB_TRUTHS = _truths(BlobRecord)

UPLOAD_FIELDS = _names(UploadRecord)
_UPLOAD_TRUTHS = _truths(UploadRecord)

ENTRY_FIELDS = ("user_id", "filename", "uploaded_at", "taken_ts", "deleted_at")
"""The columns of a library entry an ImageRecord carries beside its blob's."""

DEVICE_FIELDS = ("id", "user_id", "device", "created_at", "last_seen_at")
"""A token's columns that make a Device."""


def columns(fields: Sequence[str], prefix: str = "") -> str:
    """`a, b, "offset"` (each name quoted where SQL needs it), optionally `t.a, t.b`."""
    return ", ".join(prefix + (f'"{name}"' if name == "offset" else name) for name in fields)


LIVE_PARTNER = (
    "CASE WHEN b.live_id IS NULL THEN NULL ELSE (SELECT p.sha256 FROM blobs p "
    "WHERE p.live_id = b.live_id AND p.kind <> b.kind AND EXISTS (SELECT 1 FROM entries pe "
    "WHERE pe.user_id = e.user_id AND pe.sha256 = p.sha256 AND pe.deleted_at IS NULL) "
    "LIMIT 1) END AS live_partner"
)
"""The other half of a Live Photo in the entry's library: a blob of the other kind with
the same Apple identifier, listed (not trashed) there. Only an entry whose blob has an
identifier looks (one search of the partial index blobs_live, then the entries' key);
of several (a MOV exported twice), the first in that index's order (kind, sha256)."""

IMAGE_COLUMNS = (
    columns(BLOB_FIELDS, "b.") + ", " + columns(ENTRY_FIELDS, "e.") + ", " + LIVE_PARTNER
)
"""What a timeline query selects from `entries e` joined to `blobs b`."""


def _truth(value: Any) -> bool | None:
    return None if value is None else bool(value)


def blob_from_row(row: Row) -> BlobRecord:
    values = {name: row[name] for name in BLOB_FIELDS}
    for name in _BLOB_TRUTHS:
        values[name] = _truth(values[name])
    damage: Damage | None = values["damage"]
    values["damage"] = damage
    return BlobRecord(**values)


def blob_values(blob: BlobRecord, *, truth: type[int] | type[bool]) -> list[Any]:
    """The blob's values in BLOB_FIELDS order; truth values as `truth` (int for SQLite)."""
    values: list[Any] = []
    for name in BLOB_FIELDS:
        value = getattr(blob, name)
        values.append(truth(value) if name in _BLOB_TRUTHS and value is not None else value)
    return values


def image_from_row(row: Row) -> ImageRecord:
    deleted = row["deleted_at"]
    return ImageRecord(
        blob=blob_from_row(row),
        user_id=row["user_id"],
        filename=row["filename"],
        uploaded_at=iso(row["uploaded_at"]),
        taken_ts=row["taken_ts"],
        deleted_at=None if deleted is None else iso(deleted),
        deleted_ts=deleted,
        live_partner=row["live_partner"],
    )


def upload_from_row(row: Row) -> UploadRecord:
    values = {name: row[name] for name in UPLOAD_FIELDS}
    for name in _UPLOAD_TRUTHS:
        values[name] = _truth(values[name])
    if isinstance(values["metadata"], str):  # SQLite: JSON text; PostgreSQL: jsonb
        values["metadata"] = json.loads(values["metadata"])
    return UploadRecord(**values)


def upload_values(upload: UploadRecord, *, truth: type[int] | type[bool]) -> list[Any]:
    """The upload's values in UPLOAD_FIELDS order, metadata as JSON text."""
    values: list[Any] = []
    for name in UPLOAD_FIELDS:
        value = getattr(upload, name)
        if name == "metadata":
            value = json.dumps(dict(value), ensure_ascii=False)
        elif name in _UPLOAD_TRUTHS and value is not None:
            value = truth(value)
        values.append(value)
    return values


def device_from_row(row: Row) -> Device:
    seen = row["last_seen_at"]
    return Device(
        row["id"],
        row["user_id"],
        row["device"],
        iso(row["created_at"]),
        None if seen is None else iso(seen),
    )
