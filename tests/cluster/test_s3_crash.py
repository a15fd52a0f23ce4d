"""kill -9 on the S3 cluster: a data folder per process, the blobs in the bucket.

The rounds of tests/cluster/test_crash.py on `s3_cluster`: multipart and tus clients
upload through nginx while one of the three servers is SIGKILLed and started again.
Afterwards every acknowledged upload is listed and byte-exact through every process,
and every blob row's object is in the bucket and hashes to its name (no original on
any local disk). With folders of their own, a tus upload whose process is down (or
whose creation, with data, another process took) reaches a process with none (or less)
of its file and is told to go back to what that one holds (`World.restarts_anywhere`):
slower, never wrong.

The seed is printed; `CLUSTER_CRASH_SEED=<n>` replays the choices.
"""

from __future__ import annotations

import os
import random
from typing import Any

from tests.cluster.harness import Cluster
from tests.cluster.test_crash import ThroughNginx, round_of_load
from tests.cluster.test_s3 import check_bucket
from tests.crash_checks import check_over_http
from tests.crash_clients import finish_everything
from tests.crash_world import Http, World

ROUNDS = 1  # a round of tests/cluster/test_crash.py on object storage; a new seed every run


def test_acknowledged_uploads_are_in_the_bucket_after_servers_are_killed(
    s3_up: Cluster, user: str, bucket: Any
) -> None:
    seed = int(os.environ.get("CLUSTER_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"S3 cluster crash seed {seed}: CLUSTER_CRASH_SEED={seed} replays it")
    rng = random.Random(seed)
    world = World(seed, restarts_anywhere=True)
    token = s3_up.token(user)
    http_ = ThroughNginx(s3_up, token)
    for n in range(ROUNDS):
        victim = round_of_load(s3_up, world, http_, rng, n)
        assert not world.errors, f"seed {seed}: {world.errors}\n{s3_up.logs()}"
        check_over_http(world, http_, rng)
        print(f"round {n}: killed {victim}; {len(world.acked)} acknowledged; {dict(world.seen)}")
    finish_everything(world, http_)
    assert not world.errors, f"seed {seed}: {world.errors}"
    assert not (world.retry or world.recreate or world.tus), (seed, world.tus)
    for node in s3_up.nodes.values():
        listed = check_over_http(world, Http(node.port, token), rng)
        assert world.acked == listed.keys() == world.sent.keys(), (seed, node.name)
    check_bucket(bucket, s3_up, world.acked)
    assert world.seen["multipart"] and world.seen["tus"], world.seen
