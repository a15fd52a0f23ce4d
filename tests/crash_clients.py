"""The crash proof's clients: multipart and tus uploads that retry what a kill cut off."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from email.message import Message

from tests.conftest import multipart
from tests.crash_world import (
    API,
    CUT_OFF,
    KILL_AFTER,
    MULTIPART_CLIENTS,
    MULTIPART_SIZES,
    PHOTOS_PER_CLIENT,
    TUS,
    TUS_CLIENTS,
    TUS_PER_CLIENT,
    TUS_SIZES,
    UPLOADS,
    Http,
    Photo,
    TusUpload,
    World,
    b64,
    photos,
)
from tests.server_cli import Server

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


def start_clients(
    world: World,
    http_: Http,
    rng: random.Random,
    label: str,
    multipart: tuple[int, int] = (MULTIPART_CLIENTS, PHOTOS_PER_CLIENT),
    tus: tuple[int, int] = (TUS_CLIENTS, TUS_PER_CLIENT),
) -> list[threading.Thread]:
    """Start a round's clients: (clients, photos each) sending multipart, and (clients,
    new uploads each) over tus; what the last kill cut off is shared out among them
    first. Photos are named after `label` (a round), so every round's are new."""
    with world.lock:
        retry, world.retry = world.retry, []
        recreate, world.recreate = world.recreate, []
        unfinished = list(world.tus)
    threads = []
    clients, per_client = multipart
    for i in range(clients):
        new = photos(random.Random(rng.random()), f"{label}m{i}", MULTIPART_SIZES)
        again = retry[i::clients]
        client_rng = random.Random(rng.random())
        threads.append(
            run_guarded(world, multipart_client, world, http_, client_rng, again, new, per_client)
        )
    clients, per_client = tus
    for i in range(clients):
        fresh = photos(random.Random(rng.random()), f"{label}t{i}", TUS_SIZES)
        work: list[TusUpload | Photo] = [*unfinished[i::clients], *recreate[i::clients]]
        new_uploads = [next(fresh) for _ in range(per_client)]
        client_rng = random.Random(rng.random())
        threads.append(run_guarded(world, tus_client, world, http_, client_rng, work, new_uploads))
    return threads


def load_until_killed(
    server: Server, world: World, http_: Http, rng: random.Random, round_: int
) -> float:
    """Start every client, SIGKILL the server at a random moment, wait for the clients."""
    threads = start_clients(world, http_, rng, f"r{round_}")
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
