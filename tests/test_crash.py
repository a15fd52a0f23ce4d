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

import os
import random
from pathlib import Path

from tests.crash_checks import check_on_disk, check_over_http, collect_garbage, scrub
from tests.crash_clients import finish_everything, load_until_killed
from tests.crash_world import ROUNDS, Http, World
from tests.server_cli import cli, environment, free_port, last_line, serving

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
