"""The orphan sweep of the tus folder: staged files, and lock files, no upload owns.

Several processes may share the folder: a file is only removed under its upload's
lock (upload_locks.py), so never while a request anywhere is writing it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from .upload_locks import UPLOAD_ID_RE, UploadLocks

log = logging.getLogger(__name__)

RunIo = Callable[..., Awaitable[Any]]


def list_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


async def sweep_orphans(
    folder: Path, catalog: Catalog, locks: UploadLocks, batch: int, run_io: RunIo
) -> int:
    """Remove the files in `folder` no upload owns, `batch` names at a time; how many
    staged files went.

    Files first, then their rows: a row is always made before its file or lock file,
    so a file listed before its row was looked for, and found without one, is that of
    an upload that was removed. It is removed under the upload's lock all the same: a
    request elsewhere may still hold it, and it is then left for a later sweep.
    """
    on_disk: list[str] = await run_io(list_files, folder)
    orphans = 0
    for start in range(0, len(on_disk), batch):
        names = on_disk[start : start + batch]
        owners = {name: locks.upload_of(name) or name for name in names}
        known = await catalog.known_uploads(sorted(set(owners.values())))
        for name, owner in owners.items():
            if owner in known:
                continue
            upload_like = bool(UPLOAD_ID_RE.match(owner))
            if upload_like and not locks.take(owner):
                continue
            try:
                if name == owner or not upload_like:
                    log.warning("removing %s: no upload owns it", folder / name)
                    await run_io((folder / name).unlink, True)
                    orphans += 1
            finally:
                if upload_like:
                    locks.release(owner, remove=True)
    return orphans
