"""Per-upload locks that hold across processes sharing one data folder.

Each upload has a lock file of its own (`<id>.lock` beside the upload's data file),
locked with `flock(LOCK_EX | LOCK_NB)`. Never the data file itself: the commit path
may rename or link that file into the blob store, and a lock on an inode the name no
longer points to locks nothing.

An flock lock belongs to an open file description, so two opens in one process
exclude each other as two processes do, and the kernel lets go of it when its holder
dies, even by SIGKILL: a killed server leaves no upload locked.

A lock file is only ever removed by its holder. Whoever opens it may therefore have
opened a name that was removed (and maybe made again) before its lock was granted;
after locking, a taker checks that the path still names the inode it locked, and
tries again if not.

Taking a lock never waits: it is a few system calls, cheap enough for the event loop.
"""

from __future__ import annotations

import enum
import fcntl
import os
import re
from pathlib import Path

from ..storage.held import same_file

UPLOAD_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{16,64}\Z")
LOCK_SUFFIX = ".lock"


class Stale(enum.Enum):
    """What `attempt` says when the file it locked is no longer the one at its path."""

    STALE = "stale"


STALE = Stale.STALE


class HeldLock:
    """A lock this process holds on one open description of `path`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self, *, remove: bool = False) -> None:
        """Let go; with `remove`, first remove the lock file (allowed: it is held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if remove:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def open_lock_file(path: Path) -> int:
    """An open description of the lock file at `path`, made if missing."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def attempt(path: Path, fd: int) -> HeldLock | Stale | None:
    """Lock `fd`, opened on `path`: the held lock, None if someone holds it, or STALE
    if the file was removed (or replaced) before the lock was granted. `fd` is closed
    unless the lock is returned."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        still = same_file(fd, path)
    except BaseException:
        os.close(fd)
        raise
    if not still:
        os.close(fd)
        return STALE
    return HeldLock(path, fd)


def try_lock(path: Path, *, attempts: int = 100) -> HeldLock | None:
    """The lock on `path`, or None if another open description (in this process or
    another) holds it. Never waits."""
    for _ in range(attempts):
        outcome = attempt(path, open_lock_file(path))
        if outcome is not STALE:
            return outcome
    # The file was removed under us `attempts` times in a row: someone keeps removing
    # it, which is as good as held.
    return None


FileState = tuple[int, int, int, int]


def file_state(path: Path) -> FileState | None:
    """What tells whether anyone touched a file: a write or a cut moves its size or
    times, a new file its inode. One stat: cheap enough for the event loop."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class UploadLocks:
    """The lock files of the uploads staged in `folder`, and the locks this process
    holds on them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # Also the fast path: a second request of this process is refused without
        # opening a file (opening one would be refused all the same).
        self._held: dict[str, HeldLock] = {}

    def path_for(self, upload_id: str) -> Path:
        if not UPLOAD_ID_RE.match(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.folder / f"{upload_id}{LOCK_SUFFIX}"

    def try_lock(self, upload_id: str) -> HeldLock | None:
        return try_lock(self.path_for(upload_id))

    def take(self, upload_id: str) -> bool:
        """Hold the upload's lock, unless an open description anywhere holds it."""
        if upload_id in self._held:
            return False
        lock = self.try_lock(upload_id)
        if lock is None:
            return False
        self._held[upload_id] = lock
        return True

    def holds(self, upload_id: str) -> bool:
        return upload_id in self._held

    def held(self) -> list[str]:
        return list(self._held)

    def release(self, upload_id: str, *, remove: bool = False) -> None:
        """Let go of a lock held by `take`; with `remove`, remove its file first."""
        lock = self._held.pop(upload_id, None)
        if lock is not None:
            lock.release(remove=remove)

    @staticmethod
    def upload_of(name: str) -> str | None:
        """The upload a file name in the folder is the lock file of, if it is one."""
        if name.endswith(LOCK_SUFFIX):
            return name[: -len(LOCK_SUFFIX)]
        return None
