"""Where gc moves a blob's file before deleting it: `graveyard/<sha256>.<random>`.

Several processes share the data folder, and one's gc may forget a blob (its catalog
row) just before another's ingest records the same bytes again. So gc never unlinks a
stored file outright: it renames it here (the same file system: atomic), asks the
catalog again, and then either unlinks it or puts it back. Putting back is a hard link
to the blob's name, which fails rather than replace a file placed there meanwhile.
Each burial has a name of its own, so two collectors never take each other's.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import SHA256_RE
from .local_files import fsync_dir


class Graveyard:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def bury(self, final: Path) -> Path | None:
        """Move the stored file `final` here; where it went, None when there was none."""
        self.folder.mkdir(parents=True, exist_ok=True)
        grave = self.folder / f"{final.name}.{uuid.uuid4().hex}"
        try:
            os.rename(final, grave)
        except FileNotFoundError:
            return None
        fsync_dir(self.folder)
        fsync_dir(final.parent)
        return grave

    def unbury(self, grave: Path, final: Path) -> bool:
        """Put the file back at `final` unless one is there; the grave goes either way.

        True when this put it back; False when a file was in place already, or the
        grave was gone (another collector settled it).
        """
        for folder in (final.parent.parent, final.parent):
            folder.mkdir(exist_ok=True)
        try:
            os.link(grave, final)
            restored = True
        except FileExistsError:
            restored = False
        except FileNotFoundError:
            if not grave.exists():
                return False
            raise
        if restored:
            fsync_dir(final.parent)
        self.discard(grave)
        return restored

    def discard(self, grave: Path) -> None:
        try:
            grave.unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.folder)

    def graves(self, older_than: float) -> list[tuple[str, Path]]:
        """Burials not settled for `older_than` seconds (a collector died between its
        steps), with the sha256 each was stored under."""
        if not self.folder.is_dir():
            return []
        cutoff = time.time() - older_than
        found: list[tuple[str, Path]] = []
        for path in sorted(self.folder.iterdir()):
            sha256 = path.name.split(".", 1)[0]
            if not SHA256_RE.match(sha256):
                continue
            try:
                if path.stat().st_ctime <= cutoff:
                    found.append((sha256, path))
            except FileNotFoundError:
                continue
        return found


class GraveyardStore:
    """The store's side of gc's protocol (LocalBlobStore has it): graves by name."""

    graveyard: Graveyard

    def path_for(self, sha256: str) -> Path:
        raise NotImplementedError

    async def run(self, fn: Callable[..., Any], *args: object) -> Any:
        raise NotImplementedError

    async def bury(self, sha256: str) -> str | None:
        """Move the blob's file to the graveyard; the grave's name, None when there was none."""
        grave: Path | None = await self.run(self.graveyard.bury, self.path_for(sha256))
        return None if grave is None else grave.name

    def _grave(self, grave: str) -> Path:
        if "/" in grave or not SHA256_RE.match(grave.split(".", 1)[0]):
            raise ValueError(f"not a grave: {grave!r}")
        return self.graveyard.folder / grave

    async def unbury(self, grave: str) -> bool:
        """Back where it was stored, unless a file is there now; True when put back."""
        sha256 = grave.split(".", 1)[0]
        restored: bool = await self.run(
            self.graveyard.unbury, self._grave(grave), self.path_for(sha256)
        )
        return restored

    async def discard(self, grave: str) -> None:
        await self.run(self.graveyard.discard, self._grave(grave))

    async def graves(self, older_than: float) -> list[str]:
        found: list[tuple[str, Path]] = await self.run(self.graveyard.graves, older_than)
        return [path.name for _, path in found]

    def _changed_at(self, sha256: str) -> float | None:
        try:
            return self.path_for(sha256).stat().st_ctime
        except FileNotFoundError:
            return None

    async def changed_at(self, sha256: str) -> float | None:
        """When the blob's file was last placed or moved (st_ctime); None when absent."""
        changed: float | None = await self.run(self._changed_at, sha256)
        return changed
