"""The orphan sweep of the tus folder, on real files and a real catalog."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from server.services import Services
from server.services.upload_locks import UploadLocks, try_lock
from server.services.upload_sweep import sweep_orphans

T = TypeVar("T")


async def run_io(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.to_thread(fn, *args)


@pytest.mark.gen_test
async def test_the_sweep_removes_only_what_no_upload_owns_and_no_one_holds(
    services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "tus"
    folder.mkdir()
    user = await services.catalog.ensure_user("ines")
    live = await services.uploads.create(user, 100, {})
    gone, held, stray_lock = "g" * 22, "h" * 22, "s" * 22
    for name in (live.id, f"{live.id}.lock", gone, held, f"{stray_lock}.lock", "not-an-upload"):
        (folder / name).write_bytes(b"")
    holder = try_lock(folder / f"{held}.lock")  # a request elsewhere is writing it
    assert holder is not None
    locks = UploadLocks(folder)

    orphans = await sweep_orphans(folder, services.catalog, locks, 2, run_io)

    # The live upload's file and lock file stay, as does the held one's; the rest goes.
    assert sorted(os.listdir(folder)) == sorted([live.id, f"{live.id}.lock", held, f"{held}.lock"])
    assert orphans == 2  # `gone` and `not-an-upload`: staged files, not lock files
    assert locks.held() == []
    holder.release()
    assert await sweep_orphans(folder, services.catalog, locks, 500, run_io) == 1
    assert sorted(os.listdir(folder)) == sorted([live.id, f"{live.id}.lock"])
