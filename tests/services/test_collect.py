"""gc against ingest with no lock: two services over one data folder and one catalog.

`a` ingests, `b` collects, as two processes would. Their steps are driven one at a
time in every order they can run in (gc: take the row, bury the file, settle it;
ingest: place, record, verify), then the same in a seeded free-for-all. Whatever the
order, every entry's file is there, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import tornado.ioloop

from server.catalog import User
from server.config import Settings
from server.errors import ApiError
from server.services import Services, build_services
from server.services.ingest import Staged
from tests.conftest import CLOSE_TIMEOUT, close_within, unique_jpeg

Step = Callable[[], Awaitable[None]]
GC_STEPS = ("take", "bury", "settle")
INGEST_STEPS = ("place", "record", "verify")


def orders() -> list[tuple[str, ...]]:
    """Every interleaving of gc's three steps with ingest's three, each kept in order."""
    found = []
    for slots in itertools.combinations(range(6), 3):
        gc, ingest = iter(GC_STEPS), iter(INGEST_STEPS)
        found.append(tuple(next(gc) if n in slots else next(ingest) for n in range(6)))
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(
    request: pytest.FixtureRequest, tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> Iterator[tuple[Services, Services]]:
    data = tmp_path / "data"
    if request.param == "sqlite":
        settings = Settings(data=data, gc_grace=0)
    else:
        settings = Settings(data=data, gc_grace=0, catalog=request.getfixturevalue("postgres_url"))
    both = build_services(settings), build_services(settings)
    for services in both:
        io_loop.run_sync(services.start)
    yield both
    for services in both:
        close_within(io_loop, services, CLOSE_TIMEOUT)


async def stage(services: Services, data: bytes) -> Staged:
    writer = services.library.open_writer()
    await writer.write(data)
    return await services.library.check(writer, "p.jpg", "photo")


async def ingest(services: Services, user: User, data: bytes) -> None:
    async with services.library.writing() as writer:
        await writer.write(data)
        await services.library.ingest_one(user, writer, "p.jpg")


async def purged(services: Services, user: User, data: bytes) -> str:
    """Ingested, trashed and purged: a marked blob, its file still there."""
    await ingest(services, user, data)
    sha256 = hashlib.sha256(data).hexdigest()
    await services.library.trash(user, sha256)
    await services.library.purge(user, sha256)
    return sha256


def blob_file(services: Services, sha256: str) -> Path:
    path = services.store.local_path(sha256)
    assert path is not None
    return path


def graveyard(services: Services) -> list[Path]:
    folder = services.settings.data / "graveyard"
    return sorted(folder.iterdir()) if folder.is_dir() else []


async def assert_every_entry_has_its_file(services: Services, users: list[User]) -> int:
    """Every library and trash entry's file is there and hashes to its name; how many."""
    count = 0
    for user in users:
        for trashed in (False, True):
            for image in await services.catalog.list_images(user.id, 10_000, None, trashed=trashed):
                path = blob_file(services, image.sha256)
                assert path.is_file(), f"{image.sha256} of {user.name} has no file"
                assert hashlib.sha256(path.read_bytes()).hexdigest() == image.sha256
                count += 1
    return count


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("order", orders(), ids="-".join)
async def test_every_order_of_the_steps_keeps_the_file(
    pair: tuple[Services, Services], order: tuple[str, ...]
) -> None:
    a, b = pair
    alice = await a.catalog.ensure_user("alice")
    bob = await a.catalog.ensure_user("bob")
    data = unique_jpeg()
    sha256 = await purged(a, alice, data)  # marked: b's gc may take it (no grace)
    staged = await stage(a, data)  # bob is uploading the same bytes meanwhile
    taken: list[str] = []
    graves: list[str] = []

    async def take() -> None:
        taken.extend(await b.library.collector.take(time.time()))

    async def bury() -> None:
        for each in taken:
            grave = await b.library.collector.bury(each)
            if grave is not None:
                graves.append(grave)

    async def settle() -> None:
        for grave in graves:
            await b.library.collector.settle(sha256, grave)

    async def record() -> None:
        await a.library.record(bob, [staged])

    steps: dict[str, Step] = {
        "take": take,
        "bury": bury,
        "settle": settle,
        "place": lambda: a.library.place([staged]),
        "record": record,
        "verify": lambda: a.library.verify([staged]),
    }
    for name in order:
        await steps[name]()
    await staged.writer.abort()

    assert await a.catalog.get_image(bob.id, sha256) is not None
    assert blob_file(a, sha256).read_bytes() == data
    assert graveyard(b) == []
    # And it stays: a later gc finds an entry, and leaves the blob alone.
    assert (await b.library.collect_garbage()).blobs_removed == 0
    assert blob_file(a, sha256).read_bytes() == data
    assert await assert_every_entry_has_its_file(a, [alice, bob]) == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_placed_file_not_yet_recorded_outlives_the_orphan_sweep(
    pair: tuple[Services, Services],
) -> None:
    a, b = pair
    alice = await a.catalog.ensure_user("alice")
    data = unique_jpeg()
    sha256 = hashlib.sha256(data).hexdigest()
    staged = await stage(a, data)
    await a.library.place([staged])
    # Within the grace the sweep leaves a file just placed alone.
    b.library.collector.grace = 3600
    assert (await b.library.collect_garbage()).orphan_files == 0
    assert blob_file(a, sha256).read_bytes() == data
    # With none it takes it, through the graveyard; the ingest's check places it again.
    b.library.collector.grace = 0
    assert (await b.library.collect_garbage()).orphan_files == 1
    assert not blob_file(a, sha256).exists()
    await a.library.record(alice, [staged])
    await a.library.verify([staged])
    await staged.writer.abort()
    assert blob_file(a, sha256).read_bytes() == data
    assert graveyard(b) == []


@pytest.mark.gen_test(timeout=60)
async def test_a_grave_left_by_a_collector_that_died_is_settled_by_the_next(
    pair: tuple[Services, Services],
) -> None:
    a, b = pair
    alice = await a.catalog.ensure_user("alice")
    kept, gone = unique_jpeg(), unique_jpeg()
    kept_sha, gone_sha = await purged(a, alice, kept), await purged(a, alice, gone)
    # b's gc took both rows and buried both files, then died before its second look;
    # meanwhile a recorded one of them again.
    assert sorted(await b.library.collector.take(time.time())) == sorted([kept_sha, gone_sha])
    for sha256 in (kept_sha, gone_sha):
        assert await b.library.collector.bury(sha256) is not None
    staged = await stage(a, kept)
    await a.library.record(alice, [staged])  # its file not placed again (yet)
    assert not blob_file(a, kept_sha).exists()
    await a.library.collect_garbage()
    assert blob_file(a, kept_sha).read_bytes() == kept
    assert not blob_file(a, gone_sha).exists()
    assert graveyard(a) == []
    await staged.writer.abort()


SEEDS = list(range(1, 11))


async def pause(rng: random.Random) -> None:
    """A few turns of the loop, or one round trip of the catalog's executor."""
    if rng.random() < 0.3:
        await asyncio.sleep(0.001 * rng.randrange(1, 5))
    for _ in range(rng.randrange(12)):
        await asyncio.sleep(0)


@pytest.mark.gen_test(timeout=240)
@pytest.mark.parametrize("seed", SEEDS)
async def test_ingests_and_purges_racing_gc_keep_every_file(
    pair: tuple[Services, Services], seed: int
) -> None:
    """Replay a failure with its seed: each task draws from a generator of its own.

    Half the ingests and collections run whole; the others step by step with pauses
    drawn between the steps, so that their windows open wide.
    """
    a, b = pair
    # One person, few photos: each is often purged to nothing and uploaded again.
    users = [await a.catalog.ensure_user("alice")]
    photos = [unique_jpeg() for _ in range(3)]

    async def uploader(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        for _ in range(8):
            services, user, data = rng.choice(pair), rng.choice(users), rng.choice(photos)
            if rng.random() < 0.5:
                await ingest(services, user, data)
            else:
                staged = await stage(services, data)
                await services.library.place([staged])
                await pause(rng)
                await services.library.record(user, [staged])
                await pause(rng)
                await services.library.verify([staged])
                await staged.writer.abort()
            if rng.random() < 0.7:
                sha256 = hashlib.sha256(data).hexdigest()
                # Another task may have trashed, restored or purged it meanwhile.
                with contextlib.suppress(ApiError):
                    await services.library.trash(user, sha256)
                    if rng.random() < 0.8:
                        await services.library.purge(user, sha256)
            await pause(rng)

    uploaded = asyncio.Event()  # set when every uploader is done

    async def collector(n: int) -> None:
        rng = random.Random(seed * 1000 + 100 + n)
        while not uploaded.is_set():
            services = rng.choice(pair)
            if rng.random() < 0.5:
                await services.library.collect_garbage()
            else:
                collector = services.library.collector
                for sha256 in await collector.take(time.time()):
                    await pause(rng)
                    grave = await collector.bury(sha256)
                    await pause(rng)
                    if grave is not None:
                        await collector.settle(sha256, grave)
            await pause(rng)

    async def uploaders() -> None:
        try:
            await asyncio.gather(*(uploader(n) for n in range(4)))
        finally:
            uploaded.set()

    await asyncio.gather(uploaders(), *(collector(n) for n in range(3)))
    await assert_every_entry_has_its_file(a, users)
    await b.library.collect_garbage()
    await assert_every_entry_has_its_file(a, users)
    assert graveyard(a) == []
    # What no entry holds went (grace 0): only the photos someone still has are stored.
    held = {
        image.sha256
        for user in users
        for trashed in (False, True)
        for image in await a.catalog.list_images(user.id, 100, None, trashed=trashed)
    }
    names = [hashlib.sha256(data).hexdigest() for data in photos]
    stored = {sha256 for sha256 in names if blob_file(a, sha256).exists()}
    assert stored == held, f"seed {seed}"
