"""An original about to be served, looked at first: the damage rule.

Before a download's first byte, the stored bytes get a glance (re-hashing them is
scrub's work): a local file is opened and its size compared with the catalog's; an
object in a store with no local file has its size asked. One missing, or of another
size, is reported damaged (the catalog marks it, and it is never again served as if
fine), then looked at once more, since an upload mending it places the bytes before
it clears the mark: still wrong, it is refused (410 `image_damaged`); good after all,
the mark is cleared and it is served.

`LibraryService.check_original` applies it. What goes wrong later, while the bytes go
out (the file shrinks, the object goes), the sender reports with `report_damage`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..catalog import Damage, ImageRecord
from ..storage import BlobMissing, BlobStore


@dataclass
class CheckedOriginal:
    """An original that passed the glance: its local file opened (the caller sends from
    it and closes it), or, in a store with no local file, nothing opened (`path` None)."""

    record: ImageRecord
    path: Path | None
    file: BinaryIO | None


def open_checked(path: Path, size: int) -> tuple[BinaryIO | None, Damage | None]:
    """A blob's file opened, or what a glance shows wrong with it: one hand-off to the
    I/O threads before a download's first byte."""
    try:
        file = open(path, "rb", buffering=0)  # noqa: SIM115 (the sender closes it)
    except FileNotFoundError:
        return None, "missing"
    try:
        found = os.fstat(file.fileno()).st_size
    except BaseException:
        file.close()
        raise
    if found != size:
        file.close()
        return None, "mismatch"
    return file, None


async def stored_damage(store: BlobStore, record: ImageRecord) -> Damage | None:
    """What a glance at an object in a store shows wrong with it (None: nothing)."""
    try:
        found = await store.size(record.sha256)
    except BlobMissing:
        return "missing"
    return None if found == record.blob.size else "mismatch"
