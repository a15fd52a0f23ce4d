"""Scrub: read every blob again, and hold the catalog and the store against each other.

What it finds, blob by blob:

- `missing`: the catalog knows the blob, the store has no file for it;
- `mismatch`: the file's bytes no longer hash to its name (or cannot be read);
- `orphan`: the store has a file no catalog row knows;
- `thumbnail`: a photo that can have thumbnails lacks some of them.

Damage to originals is recorded in the catalog (`damage`, `damaged_at`), so that the
server stops serving them; uploading the same photo again mends the file and clears
the mark. With `repair`, bad and orphaned files move to the quarantine (never
deleted) and missing thumbnails are made again.

Without `repair`, scrub only reads (bar those marks) and can run beside a server on
the same data: whatever looks wrong is looked at again before it is reported, since
the server may have placed or dropped that very blob meanwhile. Repair moves files,
so it needs the data folder to itself. All file work runs in the store's and the
thumbnails' executors, one blob at a time, in bounded memory.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from ..catalog import BlobRecord, Damage, Library, Owner
from ..progress import human_bytes
from ..storage import BlobMissing, BlobStore
from .thumbnails import Thumbnails

Kind = Literal["missing", "mismatch", "orphan", "thumbnail"]
COUNTED: dict[Kind, str] = {
    "missing": "missing",
    "mismatch": "mismatched",
    "orphan": "orphaned",
    "thumbnail": "without some thumbnails",
}
PAGE = 500


@dataclass(frozen=True)
class Finding:
    kind: Kind
    sha256: str
    owners: tuple[Owner, ...]
    detail: str
    repaired: str | None = None  # what repair did about it
    resolved: bool = False  # nothing is left to do about it


@dataclass(frozen=True)
class ScrubProgress:
    blobs_done: int
    blobs_total: int
    bytes_done: int
    bytes_total: int


@dataclass
class ScrubReport:
    repair: bool
    blobs: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)  # originals: the photos at risk
    thumbnails: list[Finding] = field(default_factory=list)  # derived; also made on demand
    healed: list[str] = field(default_factory=list)  # marked damaged, found good: unmarked

    def count(self, kind: Kind) -> int:
        return sum(1 for finding in self.findings + self.thumbnails if finding.kind == kind)

    @property
    def clean(self) -> bool:
        """Every blob matches its name and the catalog (thumbnails aside)."""
        return not self.findings

    @property
    def settled(self) -> bool:
        """Nothing is left wrong with the blobs: all was clean, or repair dealt with it.

        Missing thumbnails never unsettle a scrub: the server makes them when they
        are first asked for, and nothing of a photo is lost without them.
        """
        return all(finding.resolved for finding in self.findings)

    def lines(self) -> Iterator[str]:
        """The report as text: one line a finding, what was done under it, then a summary."""
        rate = self.bytes_read / self.seconds / 1e6 if self.seconds > 0 else 0.0
        yield (
            f"scrubbed {self.blobs} blobs ({human_bytes(self.bytes_read)} read) in "
            f"{self.seconds:.1f} s ({rate:.0f} MB/s)"
        )
        for finding in self.findings + self.thumbnails:
            yield f"{finding.kind:<9} {finding.sha256}  {owners_text(finding.owners)}"
            yield f"{'':9} {finding.detail}" + (f"; {finding.repaired}" if finding.repaired else "")
        for sha256 in self.healed:
            yield f"{'healed':<9} {sha256}  its bytes are good again: no longer marked damaged"
        counts = ", ".join(
            f"{self.count(kind)} {label}" for kind, label in COUNTED.items() if self.count(kind)
        )
        if self.clean:
            yield "clean: every blob matches its name and the catalog" + (
                f" ({counts})" if counts else ""
            )
        else:
            yield f"{'repaired' if self.settled else 'not clean'}: {counts}"
        if self.count("missing") or self.count("mismatch"):
            yield (
                "damaged photos are not served; upload each again from a device that has it "
                "to repair it"
            )
        if not self.repair and (self.findings or self.thumbnails):
            yield "scrub --repair (with the server stopped) quarantines bad files, makes thumbnails"


def owners_text(owners: tuple[Owner, ...]) -> str:
    if not owners:
        return "(no photo refers to it)"
    return "; ".join(
        f"{owner.user}: {owner.filename}" + (" (in the trash)" if owner.trashed else "")
        for owner in owners
    )


class _Tracker:
    """Bytes and blobs done, reported as the reading goes on."""

    def __init__(
        self, blobs: int, size: int, progress: Callable[[ScrubProgress], None] | None
    ) -> None:
        self.blobs_total, self.bytes_total = blobs, size
        self.blobs_done = self.bytes_done = 0
        self._current = 0
        self._progress = progress

    def reading(self, read: int) -> None:
        self._current = read
        self._report()

    def done(self, size: int) -> None:
        self.blobs_done += 1
        self.bytes_done += size
        self._current = 0
        # Blobs placed since the totals were taken: the totals grow, never fall behind.
        self.blobs_total = max(self.blobs_total, self.blobs_done)
        self.bytes_total = max(self.bytes_total, self.bytes_done)
        self._report()

    def _report(self) -> None:
        if self._progress is not None:
            done = self.bytes_done + self._current
            self._progress(
                ScrubProgress(self.blobs_done, self.blobs_total, done, max(self.bytes_total, done))
            )


class Scrubber:
    def __init__(self, catalog: Library, store: BlobStore, thumbnails: Thumbnails) -> None:
        self._catalog = catalog
        self._store = store
        self._thumbnails = thumbnails

    async def run(
        self,
        *,
        repair: bool = False,
        progress: Callable[[ScrubProgress], None] | None = None,
    ) -> ScrubReport:
        started = time.monotonic()
        report = ScrubReport(repair)
        tracker = _Tracker(*await self._catalog.blob_totals(), progress)
        async for sha256, row in self._pairs():
            if row is None:
                # Recorded since the page was read? Then it is a blob like any other.
                row = await self._catalog.get_blob(sha256)
                if row is None:
                    await self._orphan(sha256, report, repair)
                    continue
            await self._check(row, report, tracker, repair)
        report.blobs = tracker.blobs_done + report.count("orphan")
        report.seconds = time.monotonic() - started
        return report

    async def _rows(self) -> AsyncIterator[BlobRecord]:
        last = ""
        while page := await self._catalog.blobs_after(last, PAGE):
            for row in page:
                yield row
            last = page[-1].sha256

    async def _pairs(self) -> AsyncIterator[tuple[str, BlobRecord | None]]:
        """Every sha256 the catalog or the store knows, in order, with its row if any.

        The rows only: whether a file is there is asked of the store when it matters.
        """
        rows, files = self._rows(), self._store.all_blobs()
        row, name = await anext(rows, None), await anext(files, None)
        while row is not None or name is not None:
            if row is not None and (name is None or row.sha256 <= name):
                if row.sha256 == name:
                    name = await anext(files, None)
                yield row.sha256, row
                row = await anext(rows, None)
            else:
                assert name is not None
                yield name, None
                name = await anext(files, None)

    async def _check(
        self, row: BlobRecord, report: ScrubReport, tracker: _Tracker, repair: bool
    ) -> None:
        read = 0

        def reading(count: int) -> None:
            nonlocal read
            read = count
            tracker.reading(count)

        digest: str | None
        try:
            digest = await self._read(row.sha256, reading)
        except BlobMissing:
            digest = None
        tracker.done(row.size)
        report.bytes_read += read
        if digest != row.sha256:
            await self._damaged(row, digest, report, repair)
            return
        if row.damaged:
            if await self._catalog.clear_damage(row.sha256):
                report.healed.append(row.sha256)
            row = dataclasses.replace(row, damage=None)
        await self._thumbnails_of(row, report, repair)

    async def _read(self, sha256: str, progress: Callable[[int], None] | None) -> str:
        """The stored bytes' SHA-256, or a sentence saying why they cannot be read."""
        try:
            return await self._store.rehash(sha256, progress)
        except BlobMissing:
            raise
        except OSError as error:
            return f"unreadable ({error.strerror or error})"

    async def _damaged(
        self, row: BlobRecord, digest: str | None, report: ScrubReport, repair: bool
    ) -> None:
        """Mark the blob, then look at it again.

        An upload mending the file places the good bytes before it clears the mark: so
        whether it clears before this marks or after, a mended file is never left marked.
        """
        if not await self._catalog.is_referenced(row.sha256):
            # No entry refers to it (purged, marked for gc): its file may be gone already,
            # or on its way through the graveyard; nothing anyone has is damaged.
            return
        # A file moved to the quarantine by an earlier repair stays a mismatch.
        missing = digest is None and row.damage != "mismatch"
        damage: Damage = "missing" if missing else "mismatch"
        if not await self._catalog.mark_damaged(row.sha256, damage, time.time()):
            return  # forgotten meanwhile (gc): nothing is damaged
        try:
            again: str | None = await self._read(row.sha256, None)
        except BlobMissing:
            again = None
        if again == row.sha256:
            await self._catalog.clear_damage(row.sha256)  # mended meanwhile
            return
        if digest is None:
            detail = "no file in the store" if missing else "its bad file is in the quarantine"
        elif digest.startswith("unreadable"):
            detail = f"its bytes are {digest}"
        else:
            detail = f"its bytes hash to {digest}"
        repaired = None
        if repair and again is not None:
            repaired = await self._quarantine(row.sha256, "mismatch")
        owners = tuple(await self._catalog.owners(row.sha256))
        report.findings.append(Finding(damage, row.sha256, owners, detail, repaired))

    async def _orphan(self, sha256: str, report: ScrubReport, repair: bool) -> None:
        detail = "a file in the store that no catalog row knows"
        repaired = None
        if repair:
            repaired = await self._quarantine(sha256, "orphan")
        resolved = repaired is not None and repaired.startswith("moved")
        report.findings.append(Finding("orphan", sha256, (), detail, repaired, resolved))

    async def _quarantine(self, sha256: str, reason: str) -> str:
        try:
            return f"moved to {await self._store.quarantine(sha256, reason)}"
        except BlobMissing:
            return "gone before it could be moved to the quarantine"
        except OSError as error:
            return f"could not be moved to the quarantine: {error.strerror or error}"

    async def _thumbnails_of(self, row: BlobRecord, report: ScrubReport, repair: bool) -> None:
        sizes = await self._thumbnails.missing(row)
        if not sizes:
            return
        detail = "no thumbnail of " + ", ".join(f"{size} px" for size in sizes)
        repaired, resolved = None, False
        if repair:
            try:
                if await self._thumbnails.rebuild(row):
                    repaired, resolved = "made again", True
                else:
                    repaired, resolved = "none can be made: the photo cannot be decoded", True
            except OSError as error:
                repaired = f"could not be made: {error.strerror or error}"
        owners = tuple(await self._catalog.owners(row.sha256))
        report.thumbnails.append(
            Finding("thumbnail", row.sha256, owners, detail, repaired, resolved)
        )
