"""Staging folders shared by several processes: clean-up takes only what no live one holds.

The other processes are real ones (a child running a LocalBlobStore), killed for real.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.storage.local import LocalBlobStore
from server.storage.local_staging import (
    CREATION_GRACE,
    LOCK_NAME,
    NEW_PREFIX,
    PREFIX,
    StagingFolder,
    reclaim,
)
from tests.staging_process import Child

HOURS_AGO = 7 * 3600
STALE = 6 * 3600


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


@pytest.fixture
def children(tmp_path: Path) -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.stop()


def open_store(data: Path, executor: ThreadPoolExecutor) -> LocalBlobStore:
    return LocalBlobStore(data / "blobs", data / "tmp", executor)


def age(path: Path, seconds: float = HOURS_AGO) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def lock_is_held(folder: Path) -> bool:
    fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.gen_test(timeout=30)
async def test_a_live_process_keeps_its_staging_through_a_start_up_recovery(
    tmp_path: Path, executor: ThreadPoolExecutor, children: list[Child]
) -> None:
    children.append(child := Child(tmp_path))
    age(child.staged)  # untouched for hours: only its owner knows it is still wanted
    store = open_store(tmp_path, executor)
    assert await store.clean_staging(0) == 0
    assert await store.clean_staging(STALE) == 0
    assert child.staged.read_bytes() == b"an upload in flight"
    assert lock_is_held(child.folder)
    child.close()  # closing lets go of it, and removes it
    assert not child.folder.exists()
    await store.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_killed_process_staging_is_reclaimed(
    tmp_path: Path, executor: ThreadPoolExecutor, children: list[Child]
) -> None:
    children.append(child := Child(tmp_path))
    children.append(survivor := Child(tmp_path))
    child.kill()
    assert child.staged.exists()  # SIGKILL: nothing of its own clean-up ran
    store = open_store(tmp_path, executor)
    assert await store.clean_staging(0) == 1
    assert not child.folder.exists()
    assert survivor.staged.exists()
    assert await store.clean_staging(0) == 0
    survivor.close()
    await store.close()
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.gen_test(timeout=30)
async def test_gc_ages_out_only_its_own_files_and_reclaims_the_dead(
    tmp_path: Path, executor: ThreadPoolExecutor, children: list[Child]
) -> None:
    children.append(live := Child(tmp_path))
    children.append(dead := Child(tmp_path))
    dead.kill()
    store = open_store(tmp_path, executor)
    old, fresh = store.open_writer(), store.open_writer()
    for writer in (old, fresh):
        await writer.write(b"mine")
        await writer.finish()
    for path in (old.staged_path, live.staged):
        age(path)
    dead_fresh = dead.folder / "fresh.part"
    dead_fresh.write_bytes(b"a dead process's, however new")

    assert await store.clean_staging(STALE) == 3  # its own old file, the dead folder's two
    assert not old.staged_path.exists() and fresh.staged_path.exists()
    assert not dead.folder.exists()
    assert live.staged.exists()
    live.close()
    await store.close()


@pytest.mark.gen_test
async def test_two_stores_in_one_process_leave_each_other_alone(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    first, second = open_store(tmp_path, executor), open_store(tmp_path, executor)
    assert first.staging_dir != second.staging_dir
    writers = [first.open_writer(), second.open_writer()]
    for writer in writers:
        await writer.write(b"staged")
        await writer.finish()
        age(writer.staged_path)
    assert await first.clean_staging(STALE) == 1
    assert not writers[0].staged_path.exists() and writers[1].staged_path.exists()
    assert await first.clean_staging(0) == 0
    assert writers[1].staged_path.exists()
    await second.close()
    assert not second.staging_dir.exists()
    assert await second.clean_staging(0) == 0  # a closed store still cleans up after the dead
    assert first.staging_dir.exists()
    await first.close()


@pytest.mark.gen_test
async def test_tus_files_and_other_files_are_never_touched(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    tus = tmp_path / "tmp" / "tus"
    tus.mkdir(parents=True)
    upload, info = tus / "0123abcd", tus / "0123abcd.part"
    for path in (upload, info, tmp_path / "tmp" / "notes.txt"):
        path.write_bytes(b"not staging's")
        age(path, 30 * 86400)
    store = open_store(tmp_path, executor)
    assert await store.clean_staging(0) == 0
    assert await store.clean_staging(STALE) == 0
    assert upload.exists() and info.exists() and (tmp_path / "tmp" / "notes.txt").exists()
    await store.close()
    assert upload.exists() and info.exists()


@pytest.mark.gen_test
async def test_older_versions_files_go_only_once_stale(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stale, recent = tmp / "aaaa.part", tmp / "bbbb.part"
    derived = tmp / "derived-cccc.tmp"
    for path in (stale, recent, derived):
        path.write_bytes(b"staged by an older version")
    age(stale)
    age(derived)
    age(recent, 60)  # an older server sharing the folder may still be writing it
    store = open_store(tmp_path, executor)
    assert await store.clean_staging(0) == 2
    assert not stale.exists() and not derived.exists() and recent.exists()
    await store.close()


def test_a_new_folder_is_locked_before_it_takes_its_name(tmp_path: Path) -> None:
    folder = StagingFolder(tmp_path)
    assert folder.path.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert lock_is_held(folder.path)
    assert [p.name for p in tmp_path.iterdir()] == [folder.path.name]
    # One still being made (no lock yet, or not yet renamed) is spared while young.
    making = tmp_path / f"{NEW_PREFIX}1-young"
    making.mkdir()
    abandoned = tmp_path / f"{NEW_PREFIX}2-abandoned"
    abandoned.mkdir()
    (abandoned / LOCK_NAME).touch()
    age(abandoned, CREATION_GRACE + 60)
    assert folder.clean(0) == 0
    assert making.is_dir() and not abandoned.exists()
    folder.close()
    folder.close()
    assert not folder.path.exists()


def test_a_removal_cut_short_is_finished(tmp_path: Path) -> None:
    # A reclaimer removes the lock file last: killed just before, it leaves a folder
    # no live process can own.
    debris = tmp_path / f"{PREFIX}1-debris"
    debris.mkdir()
    (debris / "x.part").write_bytes(b"x")
    assert reclaim(debris) == 1
    assert not debris.exists()
    held = StagingFolder(tmp_path)
    assert reclaim(held.path) is None
    assert held.path.is_dir()
    held.close()
