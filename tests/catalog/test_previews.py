"""Videos' playable previews in the catalog, on both backends: which are pending, the
attempts counted before each transcode, settling, and who holds each video."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from server.catalog import BlobRecord, Catalog
from server.catalog import sqlite as lite
from tests.catalog.records import blob


def video(n: str, **changes: object) -> BlobRecord:
    fields: dict[str, object] = {"kind": "video", "format": "MOV", "codec": "hevc"}
    return dataclasses.replace(blob(n), **{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.gen_test
async def test_pending_previews_are_sound_decodable_videos_not_settled_oldest_first(
    catalog: Catalog,
) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    first, second = video("first"), video("second", codec="vp9", format="WEBM")
    cut = video("cut", decodable=False, thumbnail=False)
    damaged = video("damaged")
    await catalog.add_image(alice.id, first, "a.mov", 1.0)
    await catalog.add_image(alice.id, blob("a photo"), "p.jpg", 2.0)
    await catalog.add_image(alice.id, cut, "c.mov", 3.0)
    await catalog.add_image(alice.id, damaged, "d.mov", 4.0)
    await catalog.add_image(bob.id, second, "b.webm", 5.0)
    await catalog.add_image(alice.id, second, "b.webm", 6.0)
    await catalog.mark_damaged(damaged.sha256, "missing", 7.0)
    pending = await catalog.pending_previews(10)
    assert [b.sha256 for b in pending] == [first.sha256, second.sha256]
    assert await catalog.pending_previews(1) == [first]

    assert [await catalog.attempt_preview(first.sha256) for _ in range(3)] == [1, 2, 3]
    entries = await catalog.preview_entries(second.sha256)
    assert [e.user_id for e in entries] == [alice.id, bob.id]
    await catalog.trash(bob.id, second.sha256, 8.0)
    settled = await catalog.settle_preview(second.sha256, "made")
    assert [e.user_id for e in settled] == [alice.id]  # the trash is told nothing
    assert settled[0].blob.preview == "made"
    await catalog.settle_preview(first.sha256, "failed")
    assert await catalog.pending_previews(10) == []
    # Made again on demand: pending once more, its attempts from nothing.
    await catalog.settle_preview(first.sha256, None)
    assert [b.sha256 for b in await catalog.pending_previews(10)] == [first.sha256]
    assert await catalog.attempt_preview(first.sha256) == 1
    found = await catalog.get_blob(second.sha256)
    assert found is not None and found.preview == "made"


@pytest.mark.gen_test
async def test_videos_stored_before_previews_are_pending_once_migrated(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    before = next(n for n, m in enumerate(lite.MIGRATIONS) if "ADD COLUMN preview" in m)
    db = sqlite3.connect(path, isolation_level=None)
    for migration in lite.MIGRATIONS[:before]:
        db.executescript(migration)
    old = video("from before previews")
    db.execute(
        "INSERT INTO blobs (sha256, md5, size, format, mime, has_gps, decodable, kind, "
        "codec, created_at) VALUES (?, ?, 3, 'MOV', 'video/quicktime', 0, 1, 'video', "
        "'hevc', 1)",
        (old.sha256, old.md5),
    )
    db.execute(f"PRAGMA user_version = {before}")
    db.close()
    catalog = lite.SQLiteCatalog(path)
    try:
        pending = await catalog.pending_previews(10)
        assert [(b.sha256, b.preview) for b in pending] == [(old.sha256, None)]
    finally:
        await catalog.close()
