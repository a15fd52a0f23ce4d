"""Derived images across processes: two services on one PostgreSQL catalog and one data
folder make each image once, and take over from a holder that died (a lease never
released, or a real process SIGKILLed while it held one)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.catalog import BlobRecord
from server.config import Settings
from server.metrics import Metrics
from server.services import Services, build_services
from server.services.derived_leases import lease_key
from server.services.thumbnails import PREVIEW
from tests.conftest import unique_jpeg


@asynccontextmanager
async def two_processes(data: Path, catalog: str) -> AsyncIterator[tuple[Services, Services]]:
    """Two servers' services over one data folder and one catalog."""
    built: list[Services] = []
    try:
        for _ in range(2):
            built.append(services := build_services(Settings(data=data, catalog=catalog)))
            await services.start()
        yield built[0], built[1]
    finally:
        for services in built:
            await services.close()


async def a_photo(services: Services) -> BlobRecord:
    """A photo ingested by `services`, its grid size made (its preview not yet)."""
    user = await services.catalog.ensure_user("alice")
    async with services.library.writing() as writer:
        await writer.write(unique_jpeg((2400, 1800)))
        ingested = await services.library.ingest_one(user, writer, "IMG_1.jpg")
    await services.library.thumbnails.drain()
    blob = await services.catalog.get_blob(ingested.image.blob.sha256)
    assert blob is not None and blob.thumbnail is True
    return blob


def made(*services: Services) -> int:
    """Decodes that wrote images, as tubei_decode_attempts_total{outcome="made"} counts."""
    return sum(one.library.thumbnails.outcomes["made"] for one in services)


def leases(services: Services, outcome: str) -> float:
    """tubei_derived_leases_total{outcome} of one process, as a scrape reads it."""
    text = Metrics(services, "test").exposition().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tubei_derived_leases_total" and sample.labels["outcome"] == outcome
    )


@pytest.mark.gen_test(timeout=60)
async def test_a_preview_asked_of_two_processes_at_once_is_decoded_once(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_processes(tmp_path / "data", postgres_url) as (one, two):
        blob = await a_photo(one)
        before = made(one, two)
        paths = await asyncio.gather(
            one.library.thumbnails.ensure(blob, PREVIEW),
            two.library.thumbnails.ensure(blob, PREVIEW),
        )
        preview = one.library.thumbnails.path(blob.sha256, PREVIEW)
        assert paths == [preview, preview] and preview.is_file()
        assert made(one, two) - before == 1
        # The grid size at ingest, then the preview: one took it, the other waited.
        assert leases(one, "taken") + leases(two, "taken") == 2
        assert leases(one, "waited") + leases(two, "waited") == 1
        assert leases(one, "expired") + leases(two, "expired") == 0
        # Released: nobody holds it now.
        key = lease_key(blob.sha256, PREVIEW)
        assert await one.catalog.claim_holder(key, time.time()) is None


@pytest.mark.gen_test(timeout=60)
async def test_a_lease_whose_holder_died_is_taken_over_when_it_ends(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_processes(tmp_path / "data", postgres_url) as (one, two):
        blob = await a_photo(one)
        # A process that claimed the preview and was killed: never released, never renewed.
        claimed_at = time.time()
        assert await one.catalog.claim(
            lease_key(blob.sha256, PREVIEW), "gone:1:dead", claimed_at, 2.0
        )
        before = made(one, two)
        path = await two.library.thumbnails.ensure(blob, PREVIEW)
        assert path == two.library.thumbnails.path(blob.sha256, PREVIEW) and path.is_file()
        assert time.time() >= claimed_at + 2.0  # not before the lease had ended
        assert made(one, two) - before == 1
        assert [leases(two, outcome) for outcome in ("taken", "waited", "expired")] == [0, 0, 1]


HOLDER = """
import asyncio, sys
from server.catalog.postgres import PostgresCatalog
from server.services.derived_leases import DerivedLeases

async def hold(url: str, sha256: str, size: int) -> None:
    catalog = PostgresCatalog(url)
    await catalog.start()
    leases = DerivedLeases(catalog, ttl=2.0)
    assert await leases.claim(sha256, [size], waited=False) == [size]
    async with leases.holding(sha256, [size]):
        print(leases.holder, flush=True)
        await asyncio.Event().wait()  # decoding, until killed

asyncio.run(hold(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.gen_test(timeout=60)
async def test_a_killed_holder_stops_renewing_and_its_lease_is_taken_over(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_processes(tmp_path / "data", postgres_url) as (one, two):
        blob = await a_photo(one)
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HOLDER,
            postgres_url,
            blob.sha256,
            str(PREVIEW),
            stdout=asyncio.subprocess.PIPE,
        )
        assert holder.stdout is not None
        name = (await holder.stdout.readline()).decode().strip()
        key = lease_key(blob.sha256, PREVIEW)
        assert name and await one.catalog.claim_holder(key, time.time()) == name
        holder.send_signal(signal.SIGKILL)  # mid-decode, as the OOM killer would
        await holder.wait()
        before = made(one, two)
        path = await two.library.thumbnails.ensure(blob, PREVIEW)
        assert path is not None and path.is_file()
        assert made(one, two) - before == 1
        assert [leases(two, outcome) for outcome in ("taken", "waited", "expired")] == [0, 0, 1]


@pytest.mark.gen_test(timeout=60)
async def test_the_upkeep_round_sweeps_the_leases_of_holders_that_stopped(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_processes(tmp_path / "data", postgres_url) as (one, two):
        now = time.time()
        assert await one.catalog.claim("thumbnail:killed:1440", "gone", now - 60, 15.0)
        assert await one.catalog.claim("thumbnail:live:1440", "here", now, 60.0)
        await two.collect_once()
        assert await one.catalog.sweep_claims(time.time()) == 0, "the ended lease is left"
        assert await one.catalog.claim_holder("thumbnail:live:1440", time.time()) == "here"
