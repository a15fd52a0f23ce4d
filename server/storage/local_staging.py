"""Each process stages in a folder of its own, and clean-up never touches a live one's.

A LocalBlobStore stages uploads in `tmp/staging-<pid>-<random>/` and holds an exclusive
`flock` on the `lock` file inside it for as long as it is open. The kernel lets go of
that lock when the process ends, however it ends (SIGKILL included), so a folder whose
lock can be taken belongs to no one: its owner is dead and nothing can finish what it
staged. Several processes (and several stores in one process: each holds its own open
file, and flock locks belong to open files) can share one `tmp/`.

A folder is made under a name the clean-up leaves to age (`.new-staging-...`), locked,
and only then renamed into place: a `staging-*` folder is never seen unlocked while its
owner lives. Who reclaims a dead folder holds its lock until the folder is gone, and
removes the lock file last; another process that took the lock after it finds the file
gone (or another file under that name) and leaves the folder alone.

tmp/tus/ (resumable uploads, the uploads service's) is never looked at.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .held import same_file

PREFIX = "staging-"
NEW_PREFIX = ".new-staging-"
LOCK_NAME = "lock"
STAGED_SUFFIX = ".part"
# Files older versions staged straight in tmp/: such a version may still be running on
# this data folder (it takes the folder's lock, a newer one on PostgreSQL does not), and
# nothing says whether it is. They go only once no upload could still be writing them.
LEGACY_PATTERNS = (f"*{STAGED_SUFFIX}", "derived-*.tmp")
LEGACY_STALE = 6 * 3600.0
# A folder being made is locked and renamed a moment after it is; one older than this
# with no lock held is what a crash left in that moment.
CREATION_GRACE = 3600.0


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
    return 1


def _empty_and_remove(folder: Path) -> int:
    """Remove what `folder` holds, its lock file last, then the folder: files removed.

    A file that appears meanwhile (a writer still running in a store being closed)
    keeps the folder; without its lock file, it is the next clean-up's.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name != LOCK_NAME:
            removed += _unlink(Path(entry.path))
    (folder / LOCK_NAME).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: see above
        folder.rmdir()
    return removed


def _lock_if_free(path: Path) -> int | None:
    """An open, locked descriptor on `path`; None when another holds its lock."""
    # Open for writing: where flock is emulated (NFS) an exclusive lock needs it.
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def reclaim(folder: Path, *, min_age: float = 0.0) -> int | None:
    """Remove `folder` when no live process holds its lock: files removed, None if held.

    A folder without a lock file is debris (a removal cut short, or under way in
    another process holding the lock already unlinked): removed too. `min_age` spares
    a folder made less than that many seconds ago.
    """
    lock = folder / LOCK_NAME
    try:
        fd = _lock_if_free(lock)
    except FileNotFoundError:
        fd = -1
    except NotADirectoryError:
        return None
    if fd is None:
        return None
    try:
        if fd >= 0 and not same_file(fd, lock):
            return 0  # another reclaimer removed it between this one's open and lock
        if min_age:
            try:
                if folder.stat().st_mtime > time.time() - min_age:
                    return None
            except FileNotFoundError:
                return 0
        return _empty_and_remove(folder)
    finally:
        if fd >= 0:
            os.close(fd)


def _remove_older(paths: list[Path], cutoff: float) -> int:
    removed = 0
    for path in paths:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _create(tmp_dir: Path) -> tuple[Path, int]:
    name = f"{os.getpid()}-{secrets.token_hex(8)}"
    making = tmp_dir / f"{NEW_PREFIX}{name}"
    making.mkdir(mode=0o700)
    try:
        fd = os.open(making / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except BaseException:
        making.rmdir()
        raise
    try:
        # Blocking: only a clean-up can hold it now, for the moment it takes to see the
        # folder is too young to reclaim.
        fcntl.flock(fd, fcntl.LOCK_EX)
        final = tmp_dir / f"{PREFIX}{name}"
        os.rename(making, final)
    except BaseException:
        os.close(fd)
        _empty_and_remove(making)
        raise
    return final, fd


class StagingArea(Protocol):
    """What a writer needs of its store: where to stage, and threads for the file work."""

    @property
    def staging_dir(self) -> Path: ...

    async def run(self, fn: Callable[..., Any], *args: object) -> Any: ...


class StagingFolder:
    """This process's (this store's) folder under `tmp/`, locked while it is open."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.path, fd = _create(tmp_dir)
        self._fd: int | None = fd
        # A store dropped without close() lets go of its lock (the folder is then a
        # dead one's, for the next clean-up), never of a descriptor number reused since.
        self._release = weakref.finalize(self, os.close, fd)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        """Remove the folder and what is staged in it, then let go of its lock."""
        if self._fd is None:
            return
        _empty_and_remove(self.path)
        self._fd = None
        self._release()

    def clean(self, older_than: float) -> int:
        """Staged files removed: this folder's untouched for `older_than` seconds, every
        folder of a process that is gone, and older versions' files once stale."""
        now = time.time()
        removed = 0
        if self._fd is not None:
            own = [p for p in self.path.iterdir() if p.name != LOCK_NAME]
            removed += _remove_older(own, now - older_than)
        for folder in sorted(self.tmp_dir.glob(f"{PREFIX}*")):
            if folder != self.path and folder.is_dir():
                removed += reclaim(folder) or 0
        for folder in sorted(self.tmp_dir.glob(f"{NEW_PREFIX}*")):
            if folder.is_dir():
                removed += reclaim(folder, min_age=CREATION_GRACE) or 0
        legacy_cutoff = now - max(older_than, LEGACY_STALE)
        for pattern in LEGACY_PATTERNS:
            removed += _remove_older(list(self.tmp_dir.glob(pattern)), legacy_cutoff)
        return removed
