"""UploadService on real files and a real catalog: locks, failures, expiry, shutdown."""

from __future__ import annotations

import asyncio
import base64
import errno
import os
from pathlib import Path

import pytest

from server import errors
from server.catalog import User
from server.config import Settings
from server.services import Services, build_services, uploads
from server.services.uploads import expected_sha256, metadata_value
from server.storage import StorageFull
from server.storage.local import LocalBlobWriter
from tests.handlers.helpers import photo, sha256


async def someone(services: Services) -> User:
    return await services.catalog.ensure_user("ines")


@pytest.mark.gen_test
async def test_one_writer_at_a_time_and_no_removal_meanwhile(services: Services) -> None:
    user = await someone(services)
    upload = await services.uploads.create(user, 100, {})
    transfer = await services.uploads.begin(user, upload.id)
    for attempt in (
        services.uploads.begin(user, upload.id),
        services.uploads.terminate(user, upload.id),
    ):
        with pytest.raises(errors.ApiError) as raised:
            await attempt
        assert raised.value.kind is errors.UPLOAD_LOCKED
    await transfer.write(b"x" * 10)
    kept = await transfer.keep()
    assert kept.offset == 10
    again = await services.uploads.begin(user, upload.id)
    assert again.offset == 10
    await again.discard()
    await services.uploads.terminate(user, upload.id)
    assert await services.catalog.get_upload(upload.id) is None


@pytest.mark.gen_test
async def test_someone_elses_upload_is_not_found(services: Services) -> None:
    owner = await someone(services)
    other = await services.catalog.ensure_user("jon")
    upload = await services.uploads.create(owner, 100, {})
    for call in (services.uploads.get, services.uploads.begin, services.uploads.terminate):
        with pytest.raises(errors.ApiError) as raised:
            await call(other, upload.id)
        assert raised.value.kind is errors.UPLOAD_NOT_FOUND


class TestQuickExpiry:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data=tmp_path / "data", upload_expiry=0.2)

    @pytest.mark.gen_test
    async def test_expiry_leaves_an_upload_being_written_alone(
        self, services: Services, settings: Settings
    ) -> None:
        user = await someone(services)
        upload = await services.uploads.create(user, 100, {})
        transfer = await services.uploads.begin(user, upload.id)
        await transfer.write(b"y" * 20)
        await asyncio.sleep(0.3)
        report = await services.uploads.expire()
        assert (report.expired, report.orphan_files) == (0, 0)
        assert (settings.tus_dir / upload.id).exists()
        await transfer.keep()  # a PATCH ending pushes the expiry back...
        assert (await services.uploads.get(user, upload.id)).offset == 20
        await asyncio.sleep(0.3)  # ...until it passes again
        assert (await services.uploads.expire()).expired == 1
        assert not (settings.tus_dir / upload.id).exists()
        assert await services.catalog.upload_ids() == set()


@pytest.mark.gen_test
async def test_a_failed_write_is_never_kept(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await someone(services)
    upload = await services.uploads.create(user, 1000, {})
    transfer = await services.uploads.begin(user, upload.id)
    await transfer.write(b"a" * 100)
    await transfer.keep()

    transfer = await services.uploads.begin(user, upload.id)
    await transfer.write(b"b" * 100)
    real_write = LocalBlobWriter._write

    def full(self: LocalBlobWriter, data: bytes) -> None:
        real_write(self, data[:7])  # part of it reached the file
        raise StorageFull(os.strerror(errno.ENOSPC))

    monkeypatch.setattr(LocalBlobWriter, "_write", full)
    with pytest.raises(errors.ApiError) as raised:
        await transfer.write(b"c" * 100)
    assert raised.value.kind is errors.INSUFFICIENT_STORAGE
    monkeypatch.setattr(LocalBlobWriter, "_write", real_write)
    # The connection closing now would ask to keep what arrived; a failed write
    # makes that a discard: back to what was durable when this request began.
    kept = await transfer.keep()
    assert kept.offset == 100
    assert (settings.tus_dir / upload.id).read_bytes() == b"a" * 100
    resumed = await services.uploads.begin(user, upload.id)
    assert resumed.offset == 100
    await resumed.write(b"d" * 900)
    with pytest.raises(errors.ApiError) as raised:
        await resumed.keep()  # the whole length: that means ingest
    assert raised.value.kind is errors.UNSUPPORTED_MEDIA_TYPE
    assert await services.catalog.get_upload(upload.id) is None
    assert not (settings.tus_dir / upload.id).exists()


@pytest.mark.gen_test
async def test_closing_waits_for_interrupted_transfers(settings: Settings) -> None:
    services = build_services(settings)
    user = await someone(services)
    upload = await services.uploads.create(user, 1_000_000, {})
    transfer = await services.uploads.begin(user, upload.id)
    await transfer.write(os.urandom(300_000))
    services.uploads.interrupted(transfer, keep=True)
    await services.close()

    reopened = build_services(settings)
    try:
        record = await reopened.catalog.get_upload(upload.id)
        assert record is not None and record.offset == 300_000
        assert (settings.tus_dir / upload.id).stat().st_size == 300_000
    finally:
        await reopened.close()


def test_metadata_values_decode_leniently() -> None:
    metadata = {
        "filename": base64.b64encode("照片.jpg".encode()).decode(),
        "binary": base64.b64encode(b"\xff\xfe").decode(),
        "flag": "",
        "sha256": base64.b64encode(b"AB" * 32).decode(),
    }
    assert metadata_value(metadata, "filename") == "照片.jpg"
    assert metadata_value(metadata, "binary") == "\ufffd\ufffd"
    assert metadata_value(metadata, "flag") == ""
    assert metadata_value(metadata, "missing") is None
    assert expected_sha256(metadata) == "ab" * 32
    assert expected_sha256({}) is None


@pytest.mark.gen_test
async def test_a_transfer_cut_off_after_its_last_byte_is_still_ingested(
    services: Services, settings: Settings
) -> None:
    # The connection can close after the whole body arrived but before the handler ran:
    # keeping what arrived must then mean ingesting it, never "complete" with no photo.
    user = await someone(services)
    data = photo()
    upload = await services.uploads.create(user, len(data), {})
    transfer = await services.uploads.begin(user, upload.id)
    await transfer.write(data)
    services.uploads.interrupted(transfer, keep=True)
    for _ in range(250):
        record = await services.catalog.get_upload(upload.id)
        if record is not None and record.complete:
            break
        await asyncio.sleep(0.02)
    assert record is not None and record.image_sha256 == sha256(data)
    assert (record.offset, record.duplicate) == (len(data), False)
    assert await services.catalog.get_image(user.id, sha256(data)) is not None
    assert not (settings.tus_dir / upload.id).exists()


@pytest.mark.gen_test
async def test_an_idle_writer_is_let_go_and_rebuilt_from_its_file(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await someone(services)
    data = photo() + os.urandom(200_000)
    upload = await services.uploads.create(user, len(data), {})
    resumed: list[int] = []
    resume_writer = services.store.resume_writer

    async def counting(path: Path, offset: int) -> LocalBlobWriter:
        resumed.append(offset)
        return await resume_writer(path, offset)

    monkeypatch.setattr(services.store, "resume_writer", counting)
    for start, end in ((0, 50_000), (50_000, 120_000)):
        transfer = await services.uploads.begin(user, upload.id)
        await transfer.write(data[start:end])
        await transfer.keep()
    assert resumed == [0], "while the process lives, the writer (and its digests) is kept"

    await services.uploads.expire()
    transfer = await services.uploads.begin(user, upload.id)
    assert resumed == [0], "recently used: still kept"
    await transfer.discard()

    monkeypatch.setattr(uploads, "IDLE_WRITER", -1.0)
    await services.uploads.expire()
    transfer = await services.uploads.begin(user, upload.id)
    assert resumed == [0, 120_000], "let go, then rebuilt from the file"
    await transfer.write(data[120_000:])
    done = await transfer.keep()
    assert done.image_sha256 == sha256(data)


# budgets ------------------------------------------------------------------------------


class TestBudgets:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data=tmp_path / "data", max_open_uploads=3, max_staged_bytes=1000)

    @pytest.mark.gen_test
    async def test_open_uploads_and_staged_bytes_are_capped_per_user(
        self, services: Services
    ) -> None:
        user, other = await someone(services), await services.catalog.ensure_user("jon")
        made = [await services.uploads.create(user, 100, {}) for _ in range(3)]
        with pytest.raises(errors.ApiError) as raised:
            await services.uploads.create(user, 100, {})
        assert raised.value.kind is errors.TOO_MANY_UPLOADS and raised.value.retry_after
        # Someone else is not held back by this user's uploads...
        await services.uploads.create(other, 950, {})
        # ...nor by the bytes cap, which is theirs alone: 950 + 100 > 1000 is.
        with pytest.raises(errors.ApiError):
            await services.uploads.create(other, 100, {})
        # A finished or deleted upload frees its place.
        await services.uploads.terminate(user, made[0].id)
        await services.uploads.create(user, 100, {})

    @pytest.mark.gen_test
    async def test_concurrent_creations_cannot_slip_past_the_cap(self, services: Services) -> None:
        user = await someone(services)
        results = await asyncio.gather(
            *(services.uploads.create(user, 10, {}) for _ in range(20)), return_exceptions=True
        )
        assert sum(not isinstance(r, Exception) for r in results) == 3


class RecordingCatalog:
    """Counts the rows each expiry query returns (the real catalog answers)."""

    def __init__(self, services: Services) -> None:
        self.batches: list[int] = []
        real = services.catalog.expired_uploads

        async def expired_uploads(*args: object, **kwargs: object) -> list[object]:
            rows = await real(*args, **kwargs)  # type: ignore[arg-type]
            self.batches.append(len(rows))
            return list(rows)

        services.catalog.expired_uploads = expired_uploads  # type: ignore[method-assign]


@pytest.mark.gen_test
async def test_expiry_goes_in_batches_and_the_catalog_shrinks_after(
    services: Services, settings: Settings
) -> None:
    user = await someone(services)
    metadata = {"filename": base64.b64encode(os.urandom(12_000)).decode()}
    for _ in range(230):
        upload = await services.uploads.create(user, 100, metadata)
        await services.catalog.set_upload_offset(upload.id, 0, 1.0)  # long expired
    size_full = settings.catalog_path.stat().st_size
    recording = RecordingCatalog(services)
    report = await services.uploads.expire(batch=50)
    assert report.expired == 230
    assert recording.batches == [50, 50, 50, 50, 30]
    assert await services.catalog.upload_ids() == set()
    assert await services.catalog.reclaim_space() > 500  # pages: the rows' 12 KB each
    size_after = settings.catalog_path.stat().st_size
    assert size_after < size_full / 4, (size_full, size_after)
