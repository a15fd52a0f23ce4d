"""Two UploadServices over one data folder and one catalog, as two `serve` processes
sharing them are: one writer per upload across both, offsets as durably recorded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.ioloop

from server import errors
from server.catalog import User
from server.config import Settings
from server.services import Services, build_services
from server.services.upload_locks import try_lock
from tests.conftest import CLOSE_TIMEOUT, close_within
from tests.handlers.helpers import photo, sha256


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(data=tmp_path / "data", gc_interval=3600)
    url = request.getfixturevalue("postgres_url")
    return Settings(data=tmp_path / "data", catalog=url, gc_interval=3600)


@pytest.fixture
def pair(settings: Settings, io_loop: tornado.ioloop.IOLoop) -> Iterator[tuple[Services, Services]]:
    first, second = build_services(settings), build_services(settings)
    for services in (first, second):
        io_loop.run_sync(services.catalog.start)
    yield first, second
    close_within(io_loop, first, CLOSE_TIMEOUT)
    close_within(io_loop, second, CLOSE_TIMEOUT)


async def someone(services: Services) -> User:
    return await services.catalog.ensure_user("ines")


@pytest.mark.gen_test
async def test_a_patch_in_flight_on_one_is_refused_on_the_other(
    pair: tuple[Services, Services],
) -> None:
    a, b = pair
    user = await someone(a)
    upload = await a.uploads.create(user, 100, {})
    transfer = await a.uploads.begin(user, upload.id)
    await transfer.write(b"x" * 10)
    for attempt in (b.uploads.begin(user, upload.id), b.uploads.terminate(user, upload.id)):
        with pytest.raises(errors.ApiError) as raised:
            await attempt
        assert raised.value.kind is errors.UPLOAD_LOCKED
    await transfer.keep()
    # Once A's request ends, B takes over at the offset A recorded.
    resumed = await b.uploads.begin(user, upload.id)
    assert resumed.offset == 10
    with pytest.raises(errors.ApiError) as raised:
        await a.uploads.begin(user, upload.id)
    assert raised.value.kind is errors.UPLOAD_LOCKED
    await resumed.discard()
    await a.uploads.terminate(user, upload.id)
    assert await b.catalog.get_upload(upload.id) is None


@pytest.mark.gen_test
async def test_expiry_on_one_leaves_an_upload_the_other_is_writing(
    pair: tuple[Services, Services], settings: Settings
) -> None:
    a, b = pair
    user = await someone(a)
    upload = await a.uploads.create(user, 100, {})
    transfer = await a.uploads.begin(user, upload.id)
    await transfer.write(b"y" * 20)
    await a.catalog.set_upload_offset(upload.id, 0, 1.0)  # long expired
    report = await b.uploads.expire()
    assert (report.expired, report.orphan_files) == (0, 0)
    assert (settings.tus_dir / upload.id).exists()
    kept = await transfer.keep()  # the PATCH ending pushes the expiry back
    assert kept.offset == 20
    assert (await b.uploads.expire()).expired == 0
    await a.catalog.set_upload_offset(upload.id, 20, 1.0)
    assert (await b.uploads.expire()).expired == 1
    assert await a.catalog.get_upload(upload.id) is None
    assert os.listdir(settings.tus_dir) == []  # the file, and its lock file


@pytest.mark.gen_test
async def test_the_orphan_sweep_leaves_a_file_whose_lock_is_held(
    pair: tuple[Services, Services], settings: Settings
) -> None:
    a, b = pair
    orphan = "o" * 22
    (settings.tus_dir / orphan).write_bytes(b"left behind")
    holder = try_lock(settings.tus_dir / f"{orphan}.lock")  # as a request elsewhere does
    assert holder is not None
    assert (await b.uploads.expire()).orphan_files == 0
    assert sorted(os.listdir(settings.tus_dir)) == [orphan, f"{orphan}.lock"]
    holder.release()  # as its holder dying does: the lock file stays
    assert (await a.uploads.expire()).orphan_files == 1
    assert os.listdir(settings.tus_dir) == []


@pytest.mark.gen_test
async def test_resuming_on_one_after_the_other_stopped_mid_way_is_byte_exact(
    pair: tuple[Services, Services], settings: Settings
) -> None:
    _, b = pair
    a = build_services(settings)  # the one that stops: it is closed here
    await a.catalog.start()
    user = await someone(a)
    data = photo() + os.urandom(200_000)
    upload = await a.uploads.create(user, len(data), {})
    # B writes first, and keeps its writer (and digests) for its next request...
    transfer = await b.uploads.begin(user, upload.id)
    await transfer.write(data[:20_000])
    await transfer.keep()
    # ...then A moves the upload on, and stops mid-request: its last bytes reached the
    # file but were never recorded, as when a process is killed mid-PATCH.
    transfer = await a.uploads.begin(user, upload.id)
    await transfer.write(data[20_000:50_000])
    await transfer.keep()
    transfer = await a.uploads.begin(user, upload.id)
    await transfer.write(b"\0" * 30_000)
    await a.close()
    assert (settings.tus_dir / upload.id).stat().st_size == 80_000
    # B answers the durable offset, not what the file holds...
    assert (await b.uploads.get(user, upload.id)).offset == 50_000
    # ...and resumes there: its own writer is stale, the unrecorded bytes are cut.
    resumed = await b.uploads.begin(user, upload.id)
    assert resumed.offset == 50_000
    assert (settings.tus_dir / upload.id).stat().st_size == 50_000
    await resumed.write(data[50_000:])
    done = await resumed.keep()
    assert done.complete and done.image_sha256 == sha256(data)
    path = b.store.local_path(sha256(data))
    assert path is not None and path.read_bytes() == data
