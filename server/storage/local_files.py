"""File moves the local store makes durable: folders synced, names never missing.

A placed blob is a hard link to its staged file, so the two names share one inode:
`place` links (over an existing name by link-then-rename), `unshare` gives a staged
name a copy of its own before anything may write to it again.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

COPY_BLOCK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _replacing(path: Path, temp: Path) -> Iterator[BinaryIO]:
    """A new file `temp` (on the same file system as `path`) to write; once written,
    fsynced and renamed over `path`, so that `path` is the old file or the whole new
    one; removed if anything fails. The folder's entry is the caller's."""
    try:
        with open(temp, "xb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_whole(path: Path, data: bytes, temp: Path) -> None:
    """`data` as the file `path`, whole or not at all (see `_replacing`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _replacing(path, temp) as file:
        file.write(data)


def place(staged: Path, final: Path) -> None:
    """Give `staged` the name `final` too, replacing a file there atomically."""
    try:
        os.link(staged, final)
    except FileExistsError:
        # Link beside it, then rename over it: the name never goes missing.
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
        os.link(staged, temp)
        try:
            os.replace(temp, final)
        finally:
            # Renaming a file over another name of itself does nothing: drop that name.
            temp.unlink(missing_ok=True)
    fsync_dir(final.parent)


def unshare(path: Path, kept: int) -> bool:
    """When `path` has other names (it was placed as a blob), put a copy of its first
    `kept` bytes in its place, so that writing to it changes no blob; True if it did."""
    with open(path, "rb") as file:
        status = os.fstat(file.fileno())
        if status.st_nlink <= 1:
            return False
        fresh = path.with_name(f"{path.name}.{uuid.uuid4().hex}.copy")
        with _replacing(path, fresh) as copy:
            remaining = min(kept, status.st_size)
            while remaining:
                block = file.read(min(COPY_BLOCK, remaining))
                if not block:
                    raise OSError(f"{path} shrank while it was copied")
                copy.write(block)
                remaining -= len(block)
    fsync_dir(path.parent)
    return True
