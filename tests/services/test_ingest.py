"""services/ingest.py: one request's files, all or nothing, and the one `upload.*` reporter."""

from __future__ import annotations

from typing import Any

import pytest

from server import errors
from server.catalog import User
from server.services import Services
from server.services.events import Mailbox
from server.services.ingest import UploadReporter
from server.storage import BlobWriter
from tests.conftest import unique_jpeg
from tests.handlers.helpers import sha256


async def alice(services: Services) -> User:
    return await services.catalog.ensure_user("alice")


async def written(services: Services, data: bytes) -> BlobWriter:
    writer = services.library.open_writer()
    await writer.write(data)
    return writer


async def pending(mailbox: Mailbox) -> list[dict[str, Any]]:
    events = []
    while len(mailbox):
        event = await mailbox.get()
        assert event is not None
        events.append(event)
    return events


@pytest.mark.gen_test(timeout=20)
async def test_a_refused_file_is_listed_and_its_writer_stays_its_openers(
    services: Services,
) -> None:
    user = await alice(services)
    ingest = services.library.ingest(user, batch=True)
    good, bad = await written(services, unique_jpeg()), await written(services, b"text " * 100)
    await ingest.add(good, "good.jpg", "a")
    await ingest.add(bad, "bad.txt", "b")
    assert bad.staged_path.exists(), "checking never drops a writer"

    result = await ingest.commit()

    assert [i.field for i in result.ingested] == ["a"]
    assert [(r.field, r.error.kind) for r in result.rejected] == [
        ("b", errors.UNSUPPORTED_MEDIA_TYPE)
    ]
    assert bad.staged_path.exists()
    await bad.abort()
    await good.abort()  # already in the store: nothing left to drop
    assert not bad.staged_path.exists()
    assert await services.catalog.get_image(user.id, result.ingested[0].image.sha256)


@pytest.mark.gen_test(timeout=20)
async def test_the_same_bytes_twice_in_one_request_are_one_photo_and_a_duplicate(
    services: Services,
) -> None:
    user = await alice(services)
    data = unique_jpeg()
    ingest = services.library.ingest(user, batch=True)
    first, second = await written(services, data), await written(services, data)
    await ingest.add(first, "1.jpg", "a")
    await ingest.add(second, "2.jpg", "b")
    result = await ingest.commit()
    assert [(i.image.sha256, i.duplicate) for i in result.ingested] == [
        (sha256(data), False),
        (sha256(data), True),
    ]
    for writer in (first, second):
        await writer.abort()


@pytest.mark.gen_test(timeout=20)
async def test_nothing_accepted_raises_the_first_refusal_or_no_files(services: Services) -> None:
    user = await alice(services)
    with pytest.raises(errors.ApiError) as nothing:
        await services.library.ingest(user).commit()
    assert nothing.value.kind is errors.NO_FILES

    ingest = services.library.ingest(user)
    empty = services.library.open_writer()
    await ingest.add(empty, "empty.jpg", "a")
    with pytest.raises(errors.ApiError) as refused:
        await ingest.commit()
    assert refused.value.kind is errors.EMPTY_FILE
    with pytest.raises(RuntimeError):
        await ingest.commit()
    await empty.abort()


@pytest.mark.gen_test(timeout=20)
async def test_a_reporter_sends_progress_then_one_final_event(services: Services) -> None:
    user = await alice(services)
    mailbox = services.events.subscribe(user.id)
    reporter = services.library.reporter(user, "u-1", 100)
    assert isinstance(reporter, UploadReporter)
    reporter.progress(100)
    async with services.library.writing() as writer:
        await writer.write(unique_jpeg())
        ingested = await services.library.ingest_one(user, writer, "p.jpg")
    reporter.done([ingested], batch=False)
    reporter.failed(errors.ApiError(errors.INTERNAL))  # too late: the upload is done
    reporter.progress(100)

    events = await pending(mailbox)

    assert [e["type"] for e in events] == ["upload.progress", "upload.done"]
    assert events[1]["stored"][0]["image"]["blob"]["sha256"] == ingested.image.sha256


@pytest.mark.gen_test(timeout=20)
async def test_a_failure_that_is_not_the_apis_reads_as_internal(services: Services) -> None:
    user = await alice(services)
    mailbox = services.events.subscribe(user.id)
    reporter = services.library.reporter(user, "u-2", None)
    reporter.failed(ValueError("a bug"))
    (event,) = await pending(mailbox)
    assert event == {
        "type": "upload.failed",
        "upload_id": "u-2",
        "error": errors.ApiError(errors.INTERNAL).to_json()["error"],
    }
