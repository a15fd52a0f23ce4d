"""Upload locks on real files, across open descriptions and real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from server.services import upload_locks
from server.services.upload_locks import STALE, HeldLock, UploadLocks

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys
from pathlib import Path
from server.services.upload_locks import try_lock
lock = try_lock(Path(sys.argv[1]))
print("locked" if lock is not None else "busy", flush=True)
sys.stdin.read()  # until killed
"""


def test_a_lock_excludes_every_other_open_description_until_released(tmp_path: Path) -> None:
    locks = UploadLocks(tmp_path)
    first = locks.try_lock("a" * 16)
    assert first is not None and first.held
    assert locks.path_for("a" * 16).exists()
    # Another open of the same file, in this very process, is refused.
    assert locks.try_lock("a" * 16) is None
    # Other uploads are not held back.
    other = locks.try_lock("b" * 16)
    assert other is not None
    first.release()
    assert not first.held
    again = locks.try_lock("a" * 16)
    assert again is not None
    again.release(remove=True)
    assert not locks.path_for("a" * 16).exists()
    other.release()
    first.release()  # a second release is harmless


def test_a_lock_held_by_another_process_is_freed_when_it_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "up.lock"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "locked"
            assert upload_locks.try_lock(path) is None
            child.send_signal(signal.SIGKILL)
            assert child.wait() == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    # The kernel let go of the dead process's lock: nothing to clean up by hand.
    mine = upload_locks.try_lock(path)
    assert mine is not None
    mine.release()


def test_a_lock_file_removed_and_made_again_before_the_lock_is_granted(tmp_path: Path) -> None:
    path = tmp_path / "up.lock"
    holder = upload_locks.try_lock(path)
    assert holder is not None
    # A taker opens the file the holder is still holding...
    late = upload_locks.open_lock_file(path)
    # ...the holder removes it and lets go; a newcomer makes it again and holds it.
    holder.release(remove=True)
    newcomer = upload_locks.try_lock(path)
    assert newcomer is not None
    # The late taker is now granted the lock on the removed inode: a lock on nothing,
    # which must not count, or it and the newcomer would both "hold" the upload.
    assert upload_locks.attempt(path, late) is STALE
    # Taken afresh, the path's lock is the newcomer's.
    assert upload_locks.try_lock(path) is None
    newcomer.release()


def test_a_lock_file_removed_and_not_made_again(tmp_path: Path) -> None:
    path = tmp_path / "up.lock"
    late = upload_locks.open_lock_file(path)
    path.unlink()
    assert upload_locks.attempt(path, late) is STALE
    # Trying again makes the file afresh and locks it.
    lock = upload_locks.try_lock(path)
    assert isinstance(lock, HeldLock)
    assert path.exists()
    assert upload_locks.try_lock(path) is None
    lock.release()


def test_lock_file_names_are_told_apart_from_uploads() -> None:
    assert UploadLocks.upload_of("abc.lock") == "abc"
    assert UploadLocks.upload_of("abc") is None
