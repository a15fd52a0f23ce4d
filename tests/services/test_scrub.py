"""Scrubber on real files and a real catalog: what it finds, records, repairs and leaves."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import shutil
from pathlib import Path

import pytest

from server.catalog import Damage, User
from server.config import Settings
from server.services import Services
from server.services.scrub import Finding, Scrubber, ScrubProgress, ScrubReport
from tests.handlers.helpers import blob_path, files_in, photo, sha256, thumb_files


async def someone(services: Services, name: str) -> User:
    return (await services.auth.issue_token(name, "pytest")).user


async def ingest(services: Services, user: User, data: bytes, filename: str) -> str:
    async with services.library.writing() as writer:
        await writer.write(data)
        await services.library.ingest_one(user, writer, filename)
    await services.library.thumbnails.drain()
    return sha256(data)


def scrubber(services: Services) -> Scrubber:
    return Scrubber(services.catalog, services.store, services.library.thumbnails)


def by_sha(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.sha256: finding for finding in findings}


def rot(path: Path, at: int = 100) -> None:
    """Flip one bit: same size, other bytes."""
    with path.open("r+b") as file:
        file.seek(at)
        byte = file.read(1)[0]
        file.seek(at)
        file.write(bytes([byte ^ 0x01]))


def text(report: ScrubReport) -> str:
    return "\n".join(report.lines())


@pytest.mark.gen_test
async def test_a_clean_library_scrubs_clean(services: Services) -> None:
    alice = await someone(services, "alice")
    photos = [photo((200, 150)) for _ in range(3)]
    for n, data in enumerate(photos):
        await ingest(services, alice, data, f"{n}.jpg")
    seen: list[ScrubProgress] = []
    report = await scrubber(services).run(progress=seen.append)
    assert report.clean and report.settled, text(report)
    assert (report.blobs, report.bytes_read) == (3, sum(len(p) for p in photos))
    assert (report.findings, report.thumbnails, report.healed) == ([], [], [])
    assert text(report).splitlines()[-1].startswith("clean")
    last = seen[-1]
    assert (last.blobs_done, last.blobs_total) == (3, 3)
    assert last.bytes_done == last.bytes_total == report.bytes_read
    assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)


@pytest.mark.gen_test
async def test_damage_of_every_kind_is_found_recorded_and_named(
    services: Services, settings: Settings
) -> None:
    alice, bob = await someone(services, "alice"), await someone(services, "bob")
    gone, rotten, thumbless, fine = (photo((120, 90)) for _ in range(4))
    await ingest(services, alice, gone, "IMG_0001.jpg")
    await ingest(services, bob, gone, "beach.jpg")
    await services.library.trash(bob, sha256(gone))
    await ingest(services, alice, rotten, "IMG_0002.jpg")
    await ingest(services, alice, thumbless, "IMG_0003.jpg")
    await ingest(services, alice, fine, "IMG_0004.jpg")
    blob_path(settings, sha256(gone)).unlink()
    rot(blob_path(settings, sha256(rotten)))
    orphan = b"bytes no catalog row knows"
    orphan_path = blob_path(settings, hashlib.sha256(orphan).hexdigest())
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    for path in thumb_files(settings, sha256(thumbless)):
        path.unlink()

    report = await scrubber(services).run()
    assert not report.clean and not report.settled
    found = by_sha(report.findings)
    assert set(found) == {sha256(gone), sha256(rotten), hashlib.sha256(orphan).hexdigest()}
    assert found[sha256(gone)].kind == "missing"
    assert [(o.user, o.filename, o.trashed) for o in found[sha256(gone)].owners] == [
        ("alice", "IMG_0001.jpg", False),
        ("bob", "beach.jpg", True),
    ]
    assert found[sha256(rotten)].kind == "mismatch"
    assert hashlib.sha256(blob_path(settings, sha256(rotten)).read_bytes()).hexdigest() in (
        found[sha256(rotten)].detail
    )
    assert found[hashlib.sha256(orphan).hexdigest()].kind == "orphan"
    assert found[hashlib.sha256(orphan).hexdigest()].owners == ()
    (thumbnail,) = report.thumbnails
    assert (thumbnail.kind, thumbnail.sha256) == ("thumbnail", sha256(thumbless))
    assert not any(f.repaired for f in report.findings + report.thumbnails)
    assert report.blobs == 5

    written = text(report)
    for sha in found:
        assert sha in written
    assert "alice: IMG_0001.jpg; bob: beach.jpg (in the trash)" in written
    assert "1 missing, 1 mismatched, 1 orphaned, 1 without some thumbnails" in written

    # Recorded in the catalog; nothing moved or deleted without --repair.
    for sha, damage in ((sha256(gone), "missing"), (sha256(rotten), "mismatch")):
        record = await services.catalog.get_blob(sha)
        assert record is not None and record.damage == damage
    assert orphan_path.read_bytes() == orphan
    assert blob_path(settings, sha256(rotten)).exists()
    assert not thumb_files(settings, sha256(thumbless))
    assert not settings.quarantine_dir.exists()

    again = await scrubber(services).run()
    assert [(f.kind, f.sha256) for f in again.findings] == [
        (f.kind, f.sha256) for f in report.findings
    ]


@pytest.mark.gen_test
async def test_repair_quarantines_and_makes_thumbnails_but_deletes_nothing(
    services: Services, settings: Settings
) -> None:
    alice = await someone(services, "alice")
    rotten, thumbless = photo((120, 90)), photo((120, 90))
    await ingest(services, alice, rotten, "rotten.jpg")
    await ingest(services, alice, thumbless, "thumbless.jpg")
    rot(blob_path(settings, sha256(rotten)))
    bad_bytes = blob_path(settings, sha256(rotten)).read_bytes()
    orphan = os.urandom(1000)
    orphan_path = blob_path(settings, hashlib.sha256(orphan).hexdigest())
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    made = thumb_files(settings, sha256(thumbless))
    for path in made:
        path.unlink()

    report = await scrubber(services).run(repair=True)
    found = by_sha(report.findings)
    assert (found[sha256(rotten)].repaired or "").startswith("moved to")
    assert not found[sha256(rotten)].resolved, "the photo stays damaged until uploaded again"
    assert found[hashlib.sha256(orphan).hexdigest()].resolved
    assert [t.resolved for t in report.thumbnails] == [True]
    assert not report.settled
    quarantined = {p.parent.name: p.read_bytes() for p in files_in(settings.quarantine_dir)}
    assert quarantined == {"mismatch": bad_bytes, "orphan": orphan}
    assert not blob_path(settings, sha256(rotten)).exists()
    assert not orphan_path.exists()
    assert sorted(thumb_files(settings, sha256(thumbless))) == sorted(made)

    after = await scrubber(services).run()
    (still,) = after.findings
    assert (still.kind, still.sha256) == ("mismatch", sha256(rotten))
    assert "in the quarantine" in still.detail
    assert after.thumbnails == []

    await ingest(services, alice, rotten, "rotten.jpg")  # uploaded again: mended
    mended = await scrubber(services).run()
    assert mended.clean and mended.settled, text(mended)
    record = await services.catalog.get_blob(sha256(rotten))
    assert record is not None and record.damage is None


@pytest.mark.gen_test
async def test_a_repair_that_only_tidies_is_settled(services: Services, settings: Settings) -> None:
    alice = await someone(services, "alice")
    await ingest(services, alice, photo(), "a.jpg")
    orphan = os.urandom(100)
    orphan_path = blob_path(settings, hashlib.sha256(orphan).hexdigest())
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    report = await scrubber(services).run(repair=True)
    assert not report.clean and report.settled
    assert text(report).splitlines()[-1] == "repaired: 1 orphaned"


@pytest.mark.gen_test
async def test_a_mark_on_a_file_found_good_is_cleared(services: Services) -> None:
    alice = await someone(services, "alice")
    digest = await ingest(services, alice, photo(), "a.jpg")
    await services.catalog.mark_damaged(digest, "missing", 1.0)
    report = await scrubber(services).run()
    assert report.clean and report.healed == [digest]
    record = await services.catalog.get_blob(digest)
    assert record is not None and record.damage is None
    assert f"healed    {digest}" in text(report)


@pytest.mark.gen_test
async def test_a_file_that_cannot_be_read_is_a_mismatch(
    services: Services, settings: Settings
) -> None:
    alice = await someone(services, "alice")
    digest = await ingest(services, alice, photo(), "a.jpg")
    path = blob_path(settings, digest)
    path.unlink()
    path.mkdir()  # opening it for reading fails, as a dying disk's sectors would
    report = await scrubber(services).run()
    (finding,) = report.findings
    assert finding.kind == "mismatch" and "unreadable" in finding.detail
    shutil.rmtree(path)


@pytest.mark.gen_test(timeout=20)
async def test_hashing_leaves_the_event_loop_free(services: Services) -> None:
    alice = await someone(services, "alice")
    await ingest(services, alice, photo() + os.urandom(48 * 1024 * 1024), "big.jpg")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.ensure_future(tick())
    at_progress: list[int] = []
    try:
        report = await scrubber(services).run(progress=lambda _: at_progress.append(ticks))
    finally:
        ticking.cancel()
    assert report.clean
    # The loop ran other work between every step of reading the 48 MiB (the last call
    # says the blob is done, straight after its last step).
    reading = at_progress[:-1]
    assert len(reading) >= 6
    assert all(later > earlier for earlier, later in itertools.pairwise(reading))


@pytest.mark.gen_test
async def test_a_file_mended_while_it_is_being_marked_is_left_unmarked(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await someone(services, "alice")
    data = photo()
    digest = await ingest(services, alice, data, "a.jpg")
    rot(blob_path(settings, digest))
    mark_damaged = services.catalog.mark_damaged

    async def mended_meanwhile(sha: str, damage: Damage, now: float) -> bool:
        marked = await mark_damaged(sha, damage, now)
        blob_path(settings, sha).write_bytes(data)  # an upload of the same photo lands
        return marked

    monkeypatch.setattr(services.catalog, "mark_damaged", mended_meanwhile)
    report = await scrubber(services).run(repair=True)
    assert report.clean, text(report)
    record = await services.catalog.get_blob(digest)
    assert record is not None and record.damage is None
    assert not settings.quarantine_dir.exists()


@pytest.mark.gen_test
async def test_a_purged_blob_on_its_way_out_is_no_damage(
    services: Services, settings: Settings
) -> None:
    alice = await someone(services, "alice")
    purged, rotten = photo((120, 90)), photo((120, 90))
    for data in (purged, rotten):
        await ingest(services, alice, data, "p.jpg")
        await services.library.trash(alice, sha256(data))
        await services.library.purge(alice, sha256(data))
    # Within the grace both rows stay; gc (another process's, say) is moving one file
    # through the graveyard, the other has gone bad: no one has either any more.
    assert await services.store.bury(sha256(purged)) is not None
    rot(blob_path(settings, sha256(rotten)))
    report = await scrubber(services).run()
    assert report.findings == [], text(report)
    for data in (purged, rotten):
        blob = await services.catalog.get_blob(sha256(data))
        assert blob is not None and blob.damage is None
