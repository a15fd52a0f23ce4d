"""Temp files held by their writer while it lives: clean-up removes only the others.

A file written whole (a thumbnail, say) goes under a temp name beside its final one,
`.<name>.<random>.held.tmp`, and is renamed into place. Its writer holds an exclusive
`flock` on it from the moment the name is its own until the rename, and the kernel lets
go of that lock when the writer ends, however it ends: a temp file whose lock can be
taken has no live writer, whichever process (or server sharing the folder) made it.

Older versions wrote `.<name>.<random>.tmp`, unlocked: one of them may still be running
on the same data folder, so those go only once stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

HELD_SUFFIX = ".held.tmp"
TEMP_SUFFIX = ".tmp"
LEGACY_STALE = 6 * 3600.0


def same_file(fd: int, path: Path) -> bool:
    """`path` still names the file open on `fd`."""
    try:
        seen = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (seen.st_dev, seen.st_ino) == (held.st_dev, held.st_ino)


def _open_held(dest: Path) -> tuple[Path, BinaryIO]:
    while True:
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}{HELD_SUFFIX}")
        file = temp.open("xb")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        except BaseException:
            file.close()
            temp.unlink(missing_ok=True)
            raise
        if same_file(file.fileno(), temp):
            return temp, file
        # A clean-up took it in the instant between its making and its lock: another name.
        file.close()


@contextlib.contextmanager
def held_temp(dest: Path) -> Iterator[BinaryIO]:
    """A new temp file beside `dest`, locked, to write; renamed over `dest` (still
    locked) when the block ends, removed when it raises."""
    temp, file = _open_held(dest)
    try:
        with file:
            yield file
            file.flush()
            os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _remove_if_unheld(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)  # as local_staging.py: NFS
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its writer is alive
    else:
        if not same_file(fd, path):
            return False  # renamed into place (or removed) before the lock was had
        path.unlink()
        return True
    finally:
        os.close(fd)


def remove_unheld(paths: Iterable[Path], older_than: float) -> int:
    """Remove the temp files among `paths` untouched for `older_than` seconds that no
    live writer holds (older versions' once stale too): how many."""
    now = time.time()
    removed = 0
    for path in paths:
        held = path.name.endswith(HELD_SUFFIX)
        cutoff = now - (older_than if held else max(older_than, LEGACY_STALE))
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            if held:
                removed += _remove_if_unheld(path)
            elif path.name.endswith(TEMP_SUFFIX):
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
