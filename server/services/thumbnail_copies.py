"""Thumbnails kept in a store of derived images too (object storage, beside the blobs):
the files under `thumbs/` are then this process's cache of them.

A thumbnail made here is put in the store once its file is written; one missing here is
fetched from the store (written whole: temp file, rename) before anything is decoded;
removing a blob's thumbnails removes them from both. Keys: `<sha256>/<file name>`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from ..storage import BlobMissing
from ..storage.home import DerivedStore, StorageUnavailable
from ..storage.local_files import write_whole

log = logging.getLogger(__name__)


def key_for(path: Path) -> str:
    """`<sha256>-<size>-v<N>.jpg` -> `<sha256>/<sha256>-<size>-v<N>.jpg`."""
    return f"{path.name.split('-', 1)[0]}/{path.name}"


def _write_whole(path: Path, data: bytes) -> None:
    write_whole(path, data, path.with_name(f".{path.name}.{uuid.uuid4().hex}.fetched.tmp"))


class DerivedCopies:
    def __init__(
        self,
        derived: Callable[[], Awaitable[DerivedStore]],
        executor: Executor,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._derived = derived
        self._executor = executor
        self._close = close  # what closes the store, when it is these copies' own

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def publish(self, paths: Iterable[Path]) -> None:
        """Put the files just made in the store. One that cannot be put is only here:
        other processes make their own (said in the log), nothing is lost."""
        store = await self._derived()
        for path in paths:
            data: bytes = await self._run(path.read_bytes)
            try:
                await store.put(key_for(path), data)
            except StorageUnavailable as error:
                log.warning("thumbnail %s stays on this disk only: %s", path.name, error)
                return

    async def fetch(self, path: Path) -> bool:
        """Write the store's copy of the thumbnail at `path`; False when it has none."""
        store = await self._derived()
        try:
            data = await store.get(key_for(path))
        except BlobMissing:
            return False
        await self._run(_write_whole, path, data)
        return True

    async def remove(self, paths: Iterable[Path]) -> None:
        store = await self._derived()
        for path in paths:
            await store.delete(key_for(path))
