"""Domain services, and the one object that holds them for the handlers.

`Services` knows its backends only by their protocols (`Catalog`, `BlobStore`,
`EventHub`); which implementation serves each is chosen from the settings here,
in `catalog_for`, `store_for`, `event_hub`, `throttles_for` and `leases_for`, and
nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from .. import memory
from ..catalog import Catalog
from ..catalog.postgres import PoolSettings, PostgresCatalog
from ..catalog.sqlite import SQLiteCatalog
from ..config import Settings
from ..config_values import EVENTS_LOCAL
from ..imaging import DecodePool, PoolLimits
from ..storage import BlobStore
from ..storage.local import LocalBlobStore
from . import auth
from .auth import AuthService
from .derived_leases import DerivedLeases
from .events import EventHub, LocalEventHub, SocketLimits
from .events_redis import RedisEventHub
from .library import LibraryService
from .media_urls import MediaUrls
from .throttle import LocalThrottle, Throttle
from .throttle_shared import PAIRING, WECHAT, SharedThrottle
from .thumbnail_copies import DerivedCopies
from .thumbnails import QueueLimits, Thumbnails
from .uploads import UploadService
from .video_previews import PreviewLimits, VideoPreviews
from .wechat import WeChatClient

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    store: BlobStore
    auth: AuthService
    library: LibraryService
    events: EventHub
    sockets: SocketLimits
    uploads: UploadService
    io_executor: ThreadPoolExecutor
    previews: VideoPreviews
    media_urls: MediaUrls

    async def run_io(self, fn: Callable[..., T], *args: object) -> T:
        """Blocking file work (a stat, a read) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.io_executor, fn, *args)

    async def start(self) -> None:
        """Reach the backends that live elsewhere (PostgreSQL, Redis, object storage):
        CatalogUnavailable, EventsUnavailable or StorageUnavailable if one cannot be
        reached."""
        await self.catalog.start()
        await self.events.start()
        await self.store.start()  # object storage: StorageUnavailable, unreachable or no bucket

    async def close(self) -> None:
        self.auth.close()
        await self.uploads.close()
        await self.previews.close()  # a transcode under way stays pending for the next start
        # Pending thumbnails wait in the catalog for the next start; decodes under way end.
        await self.library.thumbnails.close()
        await self.store.close()
        await self.events.close()  # after the last publisher: it sends what is left
        await self.catalog.close()
        self.io_executor.shutdown(wait=True)

    async def run_gc_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.gc_interval)
            await self.collect_once()

    async def collect_once(self) -> None:
        """One round of the background upkeep; a step that fails is logged, the others run."""
        try:
            report = await self.library.collect_garbage()
            log.info("garbage collected: %s", report)
        except Exception:
            log.exception("garbage collection failed")
        try:
            expired = await self.uploads.expire()
            log.info("uploads expired: %s", expired)
        except Exception:
            log.exception("expiring uploads failed")
        try:
            # Leases whose holders stopped without giving them up (a process killed).
            swept = await self.catalog.sweep_claims(time.time())
            if swept:
                log.info("leases: %d ended ones swept", swept)
        except Exception:
            log.exception("sweeping ended leases failed")
        try:
            # What the purges and expiry freed goes back to the file system.
            freed = await self.catalog.reclaim_space()
            if freed:
                log.info("catalog: %d free pages handed back", freed)
        except Exception:
            log.exception("reclaiming the catalog's free pages failed")

    async def run_revocation_sweeps_forever(self, interval: float) -> None:
        """Close sockets of devices revoked from another process (the admin command)."""
        while True:
            await asyncio.sleep(interval)
            try:
                for device in await self.auth.sweep_revoked():
                    log.info("device %s was revoked elsewhere: its sockets close", device.id)
            except Exception:
                log.exception("checking for revoked devices failed")


def wechat_client(settings: Settings) -> WeChatClient | None:
    if not (settings.wechat_appid and settings.wechat_secret):
        return None
    return WeChatClient(settings.wechat_appid, settings.wechat_secret, settings.wechat_api)


def catalog_for(settings: Settings) -> Catalog:
    """The catalog --catalog names: SQLite (opened and migrated now) or PostgreSQL
    (reached and migrated by `start()`)."""
    if settings.catalog_is_sqlite:
        return SQLiteCatalog(settings.catalog_path)
    pool = PoolSettings(size=settings.catalog_pool, timeout=settings.catalog_timeout)
    return PostgresCatalog(settings.catalog_url, pool)


def throttles_for(settings: Settings, catalog: Catalog) -> tuple[Throttle, Throttle]:
    """The pairing and WeChat login throttles: in memory for the one process a SQLite
    catalog serves, in the catalog for the several that share a PostgreSQL one."""
    pairing = (
        auth.PAIRING_ATTEMPTS,
        auth.PAIRING_ATTEMPT_WINDOW,
        settings.max_pairing_attempts_total,
    )
    wechat = (auth.WECHAT_ATTEMPTS, auth.WECHAT_ATTEMPT_WINDOW)
    if settings.catalog_is_sqlite:
        return LocalThrottle(*pairing), LocalThrottle(*wechat)
    return SharedThrottle(catalog, PAIRING, *pairing), SharedThrottle(catalog, WECHAT, *wechat)


def leases_for(settings: Settings, catalog: Catalog) -> DerivedLeases | None:
    """Leases on derived images for the processes sharing a PostgreSQL catalog; none for
    the one process a SQLite catalog serves (it makes each image once by itself)."""
    if settings.catalog_is_sqlite:
        return None
    return DerivedLeases(catalog)


def store_for(settings: Settings, io_executor: ThreadPoolExecutor) -> BlobStore:
    if settings.blobs_in_s3:
        # Imported only here: the S3 client (aiobotocore) costs every process some 18 MiB.
        from ..storage.s3_store import S3BlobStore

        return S3BlobStore(settings.s3_location(os.environ), settings.tmp_dir, io_executor)
    return LocalBlobStore(
        settings.blobs_dir, settings.tmp_dir, io_executor, settings.quarantine_dir
    )


def copies_for(
    settings: Settings, store: BlobStore, io_executor: ThreadPoolExecutor
) -> DerivedCopies | None:
    """Where derived images are kept beside this disk's (`--thumbs`): in an object store
    of their own, in the blobs' (the default with object storage), or nowhere else."""
    if settings.thumbs.startswith("s3://"):
        from ..storage.s3_store import S3DerivedHome

        own = S3DerivedHome(settings.s3_location(os.environ, "thumbs"), io_executor)
        return DerivedCopies(own.derived, io_executor, close=own.close)
    if settings.blobs_in_s3 and not settings.thumbs:
        from ..storage.s3_store import S3BlobStore

        assert isinstance(store, S3BlobStore)
        return DerivedCopies(store.derived, io_executor)
    return None


def event_hub(settings: Settings) -> EventHub:
    if settings.events == EVENTS_LOCAL:
        return LocalEventHub()
    return RedisEventHub(settings.events)


def _trimming(executor: ThreadPoolExecutor) -> Callable[[], None]:
    trimmer = memory.Trimmer()

    def trim() -> None:
        if trimmer.due():
            executor.submit(memory.give_back)

    return trim


def io_threads(cores: int | None = None) -> int:
    """Threads for the file work: hashing and writing uploads, fsyncs, opening originals.

    Hashing wants a core a thread; the fsyncs' few milliseconds of waiting want a couple
    more. Beyond that a thread only adds wake-ups and hand-offs of the GIL: on two cores,
    4 threads instead of 8 switched a sixth less and acknowledged 6-12% more photos
    (docs/performance.md)."""
    if cores is None:
        # The cores this process may run on (a container's cpuset), not the machine's.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return min(32, (cores or os.cpu_count() or 1) + 2)


def build_services(settings: Settings) -> Services:
    """Open the catalog (migrating it) and the store under `settings.data`."""
    settings.data.mkdir(parents=True, exist_ok=True)
    io_executor = ThreadPoolExecutor(max_workers=io_threads(), thread_name_prefix="io")
    catalog = catalog_for(settings)
    store = store_for(settings, io_executor)
    pool = DecodePool(
        PoolLimits(settings.decode_workers, settings.decode_budget, settings.decode_timeout)
    )
    thumbnails = Thumbnails(
        settings.thumbs_dir,
        store,
        catalog,
        pool,
        io_executor,
        settings.max_pixels,
        QueueLimits(settings.decode_attempts, settings.decode_queue),
        leases=leases_for(settings, catalog),
        copies=copies_for(settings, store, io_executor),
    )
    if settings.memory_trim:
        thumbnails.on_idle = _trimming(io_executor)
    events = event_hub(settings)
    library = LibraryService(
        catalog,
        store,
        thumbnails,
        io_executor,  # metadata: headers only, never queued behind thumbnails
        events,
        settings.max_pixels,
        settings.trash_days,
        settings.decode_budget,
        settings.gc_grace,
    )
    uploads = UploadService(
        catalog,
        store,
        library,
        settings.tus_dir,
        io_executor,
        settings.upload_expiry,
        max_open=settings.max_open_uploads,
        max_staged=settings.max_staged_bytes,
    )
    previews = VideoPreviews(
        settings.thumbs_dir,
        store,
        catalog,
        # A worker of its own: one transcode at a time, never in the thumbnails' way.
        DecodePool(PoolLimits(1, settings.decode_budget, settings.decode_timeout)),
        events,
        io_executor,
        PreviewLimits(settings.decode_attempts, settings.decode_timeout),
        enabled=settings.video_previews,
        leases=leases_for(settings, catalog),
    )
    library.on_committed = previews.schedule
    pairing_throttle, wechat_throttle = throttles_for(settings, catalog)
    return Services(
        settings=settings,
        catalog=catalog,
        store=store,
        auth=AuthService(
            catalog,
            events,
            wechat=wechat_client(settings),
            pairing_code_guesses=settings.pairing_code_guesses,
            pairing_throttle=pairing_throttle,
            wechat_throttle=wechat_throttle,
        ),
        library=library,
        events=events,
        sockets=SocketLimits(settings.max_sockets, settings.max_sockets_per_device),
        uploads=uploads,
        io_executor=io_executor,
        previews=previews,
        media_urls=MediaUrls(catalog, settings.media_url_ttl),
    )
