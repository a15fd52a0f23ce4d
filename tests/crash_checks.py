"""The crash proof's checks: over HTTP after a restart, and on disk with the server down."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.crash_clients import tus_finished
from tests.crash_world import API, HAS_SCRUB, SHA256_HEX, TUS, Http, TusUpload, World, sha256
from tests.server_cli import cli

# the checks ---------------------------------------------------------------------


def list_all(http_: Http) -> dict[str, dict[str, object]]:
    listed: dict[str, dict[str, object]] = {}
    path = f"{API}/images?limit=500"
    while True:
        status, _, body = http_.send("GET", path)
        assert status == 200, body
        page = json.loads(body)
        for item in page["items"]:
            assert item["sha256"] not in listed, f"listed twice: {item['sha256']}"
            listed[item["sha256"]] = item
        if page["next_cursor"] is None:
            return listed
        path = f"{API}/images?limit=500&cursor={page['next_cursor']}"


def check_over_http(world: World, http_: Http, rng: random.Random) -> dict[str, dict[str, object]]:
    """After a restart: acknowledged photos listed and whole; nothing else served."""
    seed = world.seed
    listed = list_all(http_)
    missing = world.acked - listed.keys()
    assert not missing, f"acknowledged but not listed after a restart (seed {seed}): {missing}"
    foreign = listed.keys() - world.sent.keys()
    assert not foreign, f"listed but never sent (seed {seed}): {foreign}"
    new = sorted(listed.keys() - world.checked)
    for sha in new:
        status, _, body = http_.send("GET", f"{API}/images/{sha}/original")
        assert status == 200, (status, body[:200])
        assert body == world.sent[sha], f"original {sha} is not what was sent (seed {seed})"
        assert listed[sha]["size"] == len(body)
        world.checked.add(sha)
    # As a gallery would: thumbnails a kill kept from being made are made on demand.
    looked_at = set(rng.sample(new, min(6, len(new))))
    for sha in new:
        for size in ("grid", "preview"):
            status, _, body = http_.send("GET", f"{API}/images/{sha}/thumbnail?size={size}")
            assert status == 200, (status, body[:200])
            if sha in looked_at:
                with Image.open(io.BytesIO(body)) as thumbnail:
                    thumbnail.load()
                    assert thumbnail.format == "JPEG"
    # Photos whose upload was cut off and that are not listed: nothing of them is served.
    for sha in sorted(world.sent.keys() - listed.keys())[:20]:
        status, _, body = http_.send("GET", f"{API}/images/{sha}/original")
        assert status == 404, f"an unlisted photo is served: {sha} {status} (seed {seed})"
    for upload in list(world.tus):
        check_tus_resumes(world, http_, upload)
    return listed


def check_tus_resumes(world: World, http_: Http, upload: TusUpload) -> None:
    """HEAD says where to resume: the last offset answered, or past the chunk in flight."""
    status, answer, body = http_.send("HEAD", upload.url, headers=TUS)
    assert status == 200, (upload.url, status, body)
    assert int(answer["Upload-Length"]) == upload.length
    offset = int(answer["Upload-Offset"])
    allowed = {upload.offset, upload.offset + upload.in_flight}
    # With folders of their own: what the process that last wrote it had, no more.
    shorter = world.restarts_anywhere and 0 <= offset < upload.offset + upload.in_flight
    assert offset in allowed or shorter, (
        f"tus {upload.url} resumes at {offset}; the client was told {upload.offset} and "
        f"had {upload.in_flight} bytes in flight (seed {world.seed})"
    )
    if offset == upload.length:
        # The last PATCH was ingested and its answer lost: HEAD tells how it ended.
        assert answer.get("Tubei-Image-Id") == upload.photo.sha, dict(answer)
        world.note("tus outcome learnt from HEAD after a restart")
        tus_finished(world, upload, answer, "tus")
        return
    assert "Tubei-Image-Id" not in answer
    final = upload.in_flight and upload.offset + upload.in_flight == upload.length
    upload.may_restart = bool(final) and offset == upload.offset
    if offset != upload.offset:
        world.note("tus chunk in flight at the kill was kept")
    upload.offset, upload.in_flight = offset, 0


def unchanged(world: World, path: Path) -> bool:
    """Whether this file is as it was when it was last found whole (then, it is marked so)."""
    info = path.stat()
    stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
    if world.whole.get(path) == stamp:
        return True
    world.whole[path] = stamp
    return False


@dataclass(frozen=True)
class Disk:
    orphans: int  # blobs no catalog row names (killed between rename and commit): gc's job
    staging: int  # files being uploaded at the kill (the next start-up drops them)
    thumbnail_temps: int  # thumbnails being written at the kill


def check_on_disk(data: Path, world: World) -> Disk:
    """With the server down, the data folder as it lies: whole, and agreeing with itself."""
    seed = world.seed
    db = sqlite3.connect(data / "catalog.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        blob_rows = db.execute("SELECT sha256, size, md5 FROM blobs")
        rows = {sha: (size, md5) for sha, size, md5 in blob_rows}
        entries = db.execute("SELECT sha256 FROM entries WHERE deleted_at IS NULL")
        listed = {sha for (sha,) in entries}
        uploads = db.execute('SELECT id, "offset", metadata, image_sha256 FROM uploads').fetchall()
    finally:
        db.close()
    missing = world.acked - listed
    assert not missing, f"acknowledged but not in the catalog after a kill (seed {seed}): {missing}"
    assert listed <= world.sent.keys(), f"catalog lists photos never sent (seed {seed})"

    blobs = data / "blobs"
    files = {path.name: path for path in blobs.rglob("*") if path.is_file()}
    for name, path in files.items():
        assert len(name) == SHA256_HEX and path == blobs / name[:2] / name[2:4] / name, path
    for sha, (size, _) in rows.items():
        assert sha in files, f"catalog row without its blob: {sha} (seed {seed})"
        assert files[sha].stat().st_size == size
    for name, path in files.items():
        if not unchanged(world, path):
            content = path.read_bytes()
            assert sha256(content) == name, f"blob {name} is not its name (seed {seed})"
            assert name not in rows or hashlib.md5(content).hexdigest() == rows[name][1]

    # tmp/ holds only staging files: no path the catalog can name. A staged file may hold
    # a listed photo's bytes (a duplicate upload killed before it was dropped).
    tmp = data / "tmp"
    tus_ids = {upload_id for upload_id, *_ in uploads}
    staging = 0
    for path in tmp.rglob("*"):
        if path.parent == tmp / "tus" and path.suffix == ".lock":
            # An upload's lock file holds no bytes; one left by a kill is swept by gc.
            assert path.stat().st_size == 0, path
        elif path.parent == tmp / "tus":
            assert path.name in tus_ids, f"{path}: a tus file no upload owns (seed {seed})"
        elif path.parent == tmp:
            # tus/, and each server's staging folder (a killed one's until it is reclaimed)
            assert path.is_dir() and (path.name == "tus" or path.name.startswith("staging-")), path
        elif path.name != "lock":
            assert path.parent.parent == tmp and path.suffix == ".part", path
            staging += 1
    for upload_id, offset, metadata, image in uploads:
        if image is not None:
            assert image in rows, f"finished upload {upload_id} names {image}, not in the catalog"
            continue
        staged = tmp / "tus" / upload_id
        on_disk = staged.stat().st_size if staged.exists() else 0
        if on_disk < offset and upload_id not in world.moved:
            # Only the ingest moves a staged file away: its photo must have reached the store.
            expected = base64.b64decode(json.loads(metadata)["sha256"]).decode()
            assert expected in files, (
                f"tus upload {upload_id} recorded {offset} bytes but has {on_disk} (seed {seed})"
            )
            # Seen once: gc then removes the orphan, and a client that gave the upload
            # up leaves its row behind until it expires.
            world.moved.add(upload_id)

    thumbs = data / "thumbs"
    temps = 0
    for path in thumbs.rglob("*"):
        if not path.is_file():
            continue
        if path.name.startswith(".") and path.suffix == ".tmp":
            temps += 1
            continue
        assert path.suffix == ".jpg" and path.name.split("-", 1)[0] in rows, path
        if not unchanged(world, path):
            with Image.open(path) as thumbnail:
                thumbnail.load()
    orphans = len(files.keys() - rows.keys())
    return Disk(orphans=orphans, staging=staging, thumbnail_temps=temps)


def collect_garbage(data: Path) -> None:
    """`gc`, with the server down and no grace: it removes what a kill left behind (orphan
    blobs, however fresh)."""
    gc = cli("gc", "--data", str(data), "--gc-grace", "0")
    assert gc.returncode == 0, gc.stderr


def scrub(data: Path, world: World) -> None:
    """`python -m server scrub` must find the store clean.

    It checks much of what check_on_disk does; both run, so that a failure is told in
    each one's own words. It counts a missing thumbnail as unclean, and a kill can leave
    some: scrub runs after check_over_http has had every photo's thumbnails made.
    """
    if not HAS_SCRUB:
        return  # before scrub existed, check_on_disk alone stood for it
    run = cli("scrub", "--data", str(data))
    assert run.returncode == 0, f"seed {world.seed}: {run.stdout}{run.stderr[-2000:]}"
