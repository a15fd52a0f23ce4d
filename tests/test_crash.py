"""Crash safety: a real server, killed with SIGKILL at random moments while it takes uploads.

Round after round, client threads send multipart and tus uploads of generated JPEGs to
a real `python -m server serve` process, which is killed with SIGKILL at a random
moment. With the server down, the data folder is checked as it lies on disk; after a
restart, over HTTP:

- every acknowledged upload (200 for multipart; 204 with `Tubei-Image-Id` for the last
  tus PATCH) is listed and its original is byte-exact;
- whatever is listed is one of the photos sent, whole; a photo whose upload was cut off
  and is not listed is 404, never part of it; thumbnails decode;
- an unfinished tus upload's `HEAD` offset is the last one the client was told, or the
  end of the chunk that was in flight, never less; the upload resumes from there and,
  in a later round or at the end, completes;
- the store is consistent: the catalog passes SQLite's integrity check, every blob row
  has its file and every file in `blobs/` re-hashes to its name, `tmp/` holds nothing but
  staging files (which no catalog row can name), every unfinished tus upload has at least
  its recorded offset on disk, every thumbnail decodes, after `gc` no orphan is left, and
  `python -m server scrub` finds it clean.

The clients retry what was cut off, as a phone would, so that by the end every photo
sent is acknowledged. The moments are random but the photos and choices are not: the
seed is printed (shown when the test fails) and `CRASH_SEED=<n>` replays it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import io
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from PIL import Image

from server.__main__ import COMMANDS
from tests.conftest import multipart
from tests.server_cli import Server, cli, environment, free_port, last_line, serving

ROUNDS = 8
MULTIPART_CLIENTS = 3
TUS_CLIENTS = 2
PHOTOS_PER_CLIENT = 24  # more than a client sends before the kill, usually
TUS_PER_CLIENT = 3
KILL_AFTER = (0.1, 1.2)  # seconds of load before the SIGKILL
SEND_PIECE = 64 * 1024
API = "/api/v1"
UPLOADS = f"{API}/uploads/"
TUS = {"Tus-Resumable": "1.0.0"}
SHA256_HEX = 64
# The server dying shows up as any of these in the client.
CUT_OFF = (OSError, http.client.HTTPException)
# `python -m server scrub` runs after each restart.
HAS_SCRUB = "scrub" in COMMANDS


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes

    @functools.cached_property
    def sha(self) -> str:
        return sha256(self.data)


def noise_jpeg(rng: random.Random, size: tuple[int, int]) -> bytes:
    """A real JPEG of random pixels: unique, and hardly compressible."""
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=rng.choice((80, 92)))
    return out.getvalue()


def photos(rng: random.Random, prefix: str, sizes: list[tuple[int, int]]) -> Iterator[Photo]:
    for n in range(10**6):
        yield Photo(f"{prefix}-{n:04d}.jpg", noise_jpeg(rng, rng.choice(sizes)))


# Mostly phone-shared sizes, some big enough that a kill lands mid-body.
MULTIPART_SIZES = [(160, 120)] * 5 + [(640, 480)] * 3 + [(1200, 900)] * 2
TUS_SIZES = [(900, 700), (1200, 900), (1400, 1000)]


@dataclass(eq=False)
class TusUpload:
    photo: Photo
    url: str
    offset: int = 0  # the last Upload-Offset the server answered
    in_flight: int = 0  # bytes of the PATCH being sent (when the server died)
    # The last PATCH was cut off, and the offset did not move: the server may have died
    # inside the ingest, after the staged file went to the store, so that the upload
    # now starts over from 0 (the one 409 this test accepts).
    may_restart: bool = False

    @property
    def length(self) -> int:
        return len(self.photo.data)


@dataclass
class World:
    """What the clients know, across rounds: what they sent and what was acknowledged."""

    seed: int
    sent: dict[str, bytes] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    retry: list[list[Photo]] = field(default_factory=list)  # multipart requests cut off
    recreate: list[Photo] = field(default_factory=list)  # tus creations cut off
    tus: list[TusUpload] = field(default_factory=list)  # unfinished, with a known URL
    checked: set[str] = field(default_factory=set)  # originals already compared over HTTP
    # Files on disk already found whole, as they were then: read again only if they change.
    whole: dict[Path, tuple[int, int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    moved: set[str] = field(default_factory=set)  # tus uploads killed inside their ingest
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Processes with data folders of their own (tests/cluster/test_s3_crash.py): a tus
    # upload whose process was down, or whose creation another process took, reaches
    # a process whose own file of it is shorter (none: 0), which answers 409 with
    # that offset; the client goes back to it.
    restarts_anywhere: bool = False

    def sending(self, batch: list[Photo]) -> None:
        with self.lock:
            for photo in batch:
                self.sent[photo.sha] = photo.data

    def acknowledged(self, sha: str, how: str) -> None:
        with self.lock:
            self.acked.add(sha)
            self.seen[how] += 1

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def note(self, what: str) -> None:
        with self.lock:
            self.seen[what] += 1


class Http:
    """One request a connection, its body sent in pieces (paced, if asked)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        pace: float = 0.0,
    ) -> tuple[int, Message, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            connection.putheader("Authorization", f"Bearer {self.token}")
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            if body or method in ("POST", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders()
            for start in range(0, len(body), SEND_PIECE):
                connection.send(body[start : start + SEND_PIECE])
                if pace:
                    time.sleep(pace)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


# the clients ----------------------------------------------------------------------


def multipart_client(
    world: World,
    http_: Http,
    rng: random.Random,
    work: list[list[Photo]],
    new: Iterator[Photo],
    requests: int,
) -> None:
    """Sends again the requests cut off last time, then new photos, one to three a request."""
    for n in range(max(requests, len(work))):
        if n < len(work):
            batch = work[n]
        else:
            batch = [next(new) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        world.sending(batch)
        body, content_type = multipart([("photo", p.name, p.data) for p in batch])
        headers = {"Content-Type": content_type}
        if rng.random() < 0.5:
            headers["X-Upload-Id"] = f"crash-{batch[0].sha[:16]}"
        pace = rng.choice((0.0, 0.0, 0.002))
        try:
            status, _, answer = http_.send("POST", f"{API}/images", body, headers, pace)
        except CUT_OFF:
            with world.lock:
                world.retry.append(batch)
                world.retry.extend(work[n + 1 :])
            return
        if status != 200:
            world.error(f"multipart upload: {status} {answer[:300]!r}")
            return
        items = json.loads(answer)["items"]
        if [item["sha256"] for item in items] != [p.sha for p in batch]:
            world.error(f"multipart upload answered {items} for {[p.sha for p in batch]}")
            return
        for photo in batch:
            world.acknowledged(photo.sha, "multipart")


def tus_finished(world: World, upload: TusUpload, answer: Message, how: str) -> None:
    image_id = answer.get("Tubei-Image-Id")
    if image_id != upload.photo.sha:
        world.error(f"tus {upload.url} finished as {image_id}, not {upload.photo.sha}")
        return
    with world.lock:
        if upload in world.tus:
            world.tus.remove(upload)
    world.acknowledged(upload.photo.sha, how)


def tus_create(world: World, http_: Http, rng: random.Random, photo: Photo) -> TusUpload | None:
    """POST to /uploads/, half the time with a first chunk. Raises CUT_OFF."""
    metadata = f"filename {b64(photo.name)},sha256 {b64(photo.sha)}"
    headers = {**TUS, "Upload-Length": str(len(photo.data)), "Upload-Metadata": metadata}
    first = b""
    if rng.random() < 0.5:
        first = photo.data[: rng.choice((64, 256, 1024)) * 1024]
        headers["Content-Type"] = "application/offset+octet-stream"
    world.sending([photo])
    status, answer, body = http_.send("POST", UPLOADS, first, headers)
    if status != 201:
        world.error(f"tus creation: {status} {body[:300]!r}")
        return None
    upload = TusUpload(photo, answer["Location"])
    upload.offset = int(answer.get("Upload-Offset", "0"))
    if upload.offset != len(first):
        world.error(f"tus creation with {len(first)} bytes answered offset {upload.offset}")
        return None
    with world.lock:
        world.tus.append(upload)
    if upload.offset == upload.length:
        tus_finished(world, upload, answer, "tus")
    return upload


def tus_send(world: World, http_: Http, rng: random.Random, upload: TusUpload) -> None:
    """PATCH the rest of an upload, a chunk a request. Raises CUT_OFF."""
    while upload.offset < upload.length and upload in world.tus:
        start = upload.offset
        chunk = upload.photo.data[start : start + rng.choice((128, 256, 512)) * 1024]
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(start),
        }
        if rng.random() < 0.3:
            digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
            headers["Upload-Checksum"] = f"sha256 {digest}"
        method = "PATCH"
        if rng.random() < 0.3:
            method, headers["X-HTTP-Method-Override"] = "POST", "PATCH"
        upload.in_flight = len(chunk)
        status, answer, body = http_.send(method, upload.url, chunk, headers)
        upload.in_flight = 0
        may_restart, upload.may_restart = upload.may_restart, False
        if status == 409 and may_restart and answer.get("Upload-Offset") == "0":
            world.note("tus upload started over after a crash inside its ingest")
            upload.offset = 0
            continue
        if status == 409 and world.restarts_anywhere and int(answer["Upload-Offset"]) < start:
            world.note("tus upload went back on a process with less of its file")
            upload.offset = int(answer["Upload-Offset"])
            continue
        if status != 204:
            world.error(f"tus PATCH {upload.url} at {start}: {status} {body[:300]!r}")
            return
        upload.offset = int(answer["Upload-Offset"])
        if upload.offset != start + len(chunk):
            world.error(f"tus PATCH {upload.url}: {upload.offset} after {start}+{len(chunk)}")
            return
        if upload.offset == upload.length:
            tus_finished(world, upload, answer, "tus")


def tus_client(
    world: World,
    http_: Http,
    rng: random.Random,
    work: list[TusUpload | Photo],
    new: list[Photo],
) -> None:
    """Carries on with its unfinished uploads, then starts new ones."""
    todo = [*work, *new]
    for n, item in enumerate(todo):
        try:
            if isinstance(item, Photo):
                upload = tus_create(world, http_, rng, item)
                if upload is None:
                    return
            else:
                upload = item
            tus_send(world, http_, rng, upload)
        except CUT_OFF:
            # The server is gone. An upload whose creation got no answer has no known URL:
            # it is created anew next time, as are those not yet begun.
            with world.lock:
                started = {u.photo for u in world.tus}
                world.recreate.extend(
                    p
                    for p in todo[n:]
                    if isinstance(p, Photo) and p not in started and p.sha not in world.acked
                )
            return


def run_guarded(world: World, target: object, *args: object) -> threading.Thread:
    def guarded() -> None:
        try:
            target(*args)  # type: ignore[operator]
        except Exception as error:  # a bug in the client or an answer it did not expect
            world.error(f"{getattr(target, '__name__', target)}: {error!r}")

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    return thread


def load_until_killed(
    server: Server, world: World, http_: Http, rng: random.Random, round_: int
) -> float:
    """Start every client, SIGKILL the server at a random moment, wait for the clients."""
    with world.lock:
        retry, world.retry = world.retry, []
        recreate, world.recreate = world.recreate, []
        unfinished = list(world.tus)
    threads = []
    for i in range(MULTIPART_CLIENTS):
        new = photos(random.Random(rng.random()), f"r{round_}m{i}", MULTIPART_SIZES)
        again = retry[i::MULTIPART_CLIENTS]
        client_rng = random.Random(rng.random())
        threads.append(
            run_guarded(
                world, multipart_client, world, http_, client_rng, again, new, PHOTOS_PER_CLIENT
            )
        )
    for i in range(TUS_CLIENTS):
        fresh = photos(random.Random(rng.random()), f"r{round_}t{i}", TUS_SIZES)
        work: list[TusUpload | Photo] = [*unfinished[i::TUS_CLIENTS], *recreate[i::TUS_CLIENTS]]
        new_uploads = [next(fresh) for _ in range(TUS_PER_CLIENT)]
        client_rng = random.Random(rng.random())
        threads.append(run_guarded(world, tus_client, world, http_, client_rng, work, new_uploads))
    kill_after = rng.uniform(*KILL_AFTER)
    time.sleep(kill_after)
    server.process.kill()
    server.process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), f"a client hangs after the kill (seed {world.seed})"
    return kill_after


def finish_everything(world: World, http_: Http) -> None:
    """No more kills: every request cut off is sent again, every tus upload completed."""
    rng = random.Random(world.seed)
    retry, world.retry = world.retry, []
    recreate, world.recreate = world.recreate, []
    multipart_client(world, http_, rng, retry, iter(()), 0)
    tus_client(world, http_, rng, [*world.tus, *recreate], [])


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


# the test ----------------------------------------------------------------------------


def test_acknowledged_uploads_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash test seed {seed}: CRASH_SEED={seed} replays it")
    rng = random.Random(seed)
    world = World(seed)
    data = tmp_path / "data"
    made = cli("token", "--data", str(data), "--user", "crash")
    assert made.returncode == 0, made.stderr
    token = last_line(made.stdout)

    for round_ in range(ROUNDS):
        port = free_port()
        flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
        with serving(tmp_path, [*flags, "--log-level", "warning"], environment(), port) as server:
            http_ = Http(port, token)
            check_over_http(world, http_, rng)
            scrub(data, world)  # beside the server, which is idle now
            kill_after = load_until_killed(server, world, http_, rng, round_)
        assert not world.errors, f"seed {seed}: {world.errors}"
        disk = check_on_disk(data, world)
        print(
            f"round {round_}: killed after {kill_after:.2f}s; {len(world.acked)} acknowledged, "
            f"{len(world.sent)} sent; {sum(map(len, world.retry))} to send again, "
            f"{len(world.tus)} tus unfinished; left: {disk.orphans} orphan blobs, "
            f"{disk.staging} staged files, {disk.thumbnail_temps} thumbnail temp files"
        )
        collect_garbage(data)
        assert check_on_disk(data, world).orphans == 0

    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    with serving(tmp_path, flags, environment(), port) as server:
        http_ = Http(port, token)
        check_over_http(world, http_, rng)
        finish_everything(world, http_)
        assert not world.errors, f"seed {seed}: {world.errors}"
        assert not (world.retry or world.recreate or world.tus), (seed, world.tus)
        listed = check_over_http(world, http_, rng)
        assert world.acked == listed.keys() == world.sent.keys()
        assert server.stop() == 0
    check_on_disk(data, world)
    collect_garbage(data)
    assert check_on_disk(data, world).orphans == 0
    scrub(data, world)
    print(f"seed {seed}: {dict(world.seen)}; killed inside the ingest: {len(world.moved)}")
    # Both ways in were acknowledged, and some kills did land inside uploads.
    assert world.seen["multipart"] and world.seen["tus"], world.seen
