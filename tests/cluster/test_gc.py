"""gc on one process racing ingest on the others loses nothing.

A collects garbage every second with no grace (`--gc-interval 1 --gc-grace 0`), so a
blob is eligible the moment its last entry goes. Meanwhile clients on B and C, each a
user of its own, upload photos from one pool, purge some (trash, then delete from the
trash) and send the same bytes again: an upload of bytes whose last entry another
user is purging races that purge and A's gc for the blob. Afterwards every photo
listed has its original, byte-exact, on every process, and every upload acknowledged
and not purged since is listed.

The choices are random; the seed is printed and `CLUSTER_GC_SEED=<n>` replays it.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time

from tests.cluster.client import auth, call, listing, uploaded
from tests.cluster.harness import Cluster
from tests.crash_world import noise_jpeg
from tests.server_cli import request

SECONDS = 6.0
CLIENTS = 2


def client(
    base: str,
    token: str,
    rng: random.Random,
    photos: list[bytes],
    kept: dict[str, bytes],
    errors: list[str],
) -> None:
    ids: dict[str, bytes] = {}
    deadline = time.monotonic() + SECONDS
    try:
        while time.monotonic() < deadline:
            data = rng.choice(photos)
            sha = hashlib.sha256(data).hexdigest()
            if sha in ids and rng.random() < 0.6:
                # Purge it: unless another user holds the same bytes, its blob is
                # gc's at once (grace 0), while other clients may be sending them.
                call(base, f"/images/{sha}", token, "DELETE")
                call(base, f"/trash/{sha}", token, "DELETE")
                del ids[sha]
                kept.pop(sha, None)
            else:
                item = uploaded(base, token, f"{sha[:8]}.jpg", data)
                assert item["sha256"] == sha
                ids[sha] = data
                kept[sha] = data
    except AssertionError as error:
        errors.append(f"{base}: {error}")


def test_gc_on_one_process_racing_ingest_on_the_others_loses_nothing(
    running: Cluster, user: str
) -> None:
    seed = int(os.environ.get("CLUSTER_GC_SEED", random.randrange(1 << 30)))
    print(f"gc race seed: {seed} (CLUSTER_GC_SEED={seed} replays it)")
    rng = random.Random(seed)
    running.restart("a", "--gc-interval", "1", "--gc-grace", "0")
    try:
        # One pool for every client (each a user of its own): the same bytes are one
        # blob, purged by one user while another's upload of them is in flight.
        photos = [
            noise_jpeg(rng, (rng.randrange(64, 400), rng.randrange(64, 300))) for _ in range(5)
        ]
        kept: list[dict[str, bytes]] = [{} for _ in range(CLIENTS * 2)]
        errors: list[str] = []
        tokens = [running.token(f"{user}-{n}") for n in range(CLIENTS * 2)]
        bases = [running.nodes["b"].url, running.nodes["c"].url] * CLIENTS
        threads = [
            threading.Thread(
                target=client,
                args=(bases[n], tokens[n], random.Random(rng.random()), photos, kept[n], errors),
            )
            for n in range(CLIENTS * 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SECONDS + 60)
        assert not errors, (seed, errors)
        time.sleep(1.5)  # at least one more collection on A after the last upload
        for n, token in enumerate(tokens):
            for node in running.nodes.values():
                listed = {item["sha256"] for item in listing(node.url, token)}
                assert listed == set(kept[n]), (seed, node.name)
                for sha, data in kept[n].items():
                    status, _, body = request(
                        f"{node.url}/images/{sha}/original", headers=auth(token)
                    )
                    assert status == 200 and body == data, (seed, node.name, sha, status)
    finally:
        running.restart("a")
