"""File moves the local store makes durable: folders synced, names never missing.

A placed blob is a hard link to its staged file, so the two names share one inode:
`place` links (over an existing name by link-then-rename), `unshare` gives a staged
name a copy of its own before anything may write to it again.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

COPY_BLOCK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_whole(path: Path, data: bytes, temp: Path) -> None:
    """`data` as the file `path`, whole or not at all: written to `temp` (on the same
    file system), fsynced, renamed over `path`. The folder's entry is the caller's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(temp, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


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
        try:
            with open(fresh, "xb") as copy:
                remaining = min(kept, status.st_size)
                while remaining:
                    block = file.read(min(COPY_BLOCK, remaining))
                    if not block:
                        raise OSError(f"{path} shrank while it was copied")
                    copy.write(block)
                    remaining -= len(block)
                copy.flush()
                os.fsync(copy.fileno())
            os.replace(fresh, path)
        except BaseException:
            fresh.unlink(missing_ok=True)
            raise
    fsync_dir(path.parent)
    return True
