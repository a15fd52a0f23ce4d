"""kill -9 on the cluster: uploads through nginx while servers are SIGKILLed.

Round after round, multipart and tus clients (tests/crash_clients.py's) upload through
nginx; at a random moment one of the three servers is killed with SIGKILL and started
again at once, while the others go on. A request the dead server was answering is cut
off, which nginx reports as its 502: the client sends it again, as after a cut
connection, and nginx takes it to a living process. Afterwards everything
acknowledged is listed and byte-exact through every process, tus uploads resume where
HEAD says, and every blob row's file re-hashes to its name. The restarted server's
start-up clean-up of `tmp/` takes only the dead process's files, never the staged
uploads the living ones are writing.

The seed is printed; `CLUSTER_CRASH_SEED=<n>` replays the choices.
"""

from __future__ import annotations

import http.client
import os
import random
import time
from email.message import Message

from tests.cluster.harness import Cluster
from tests.crash_checks import check_over_http
from tests.crash_clients import finish_everything, start_clients
from tests.crash_world import Http, World

ROUNDS = 2  # each a kill and a restart of a random process; a new seed every run
MULTIPART_CLIENTS = 2
TUS_CLIENTS = 2
REQUESTS = 16  # enough that the others are still uploading while the victim restarts
KILL_AFTER = (0.2, 1.0)


class ThroughNginx(Http):
    """The crash test's client through nginx: its 502 is a request cut off."""

    def __init__(self, cluster: Cluster, token: str) -> None:
        super().__init__(cluster.nginx.port, token)
        self.cluster = cluster

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        pace: float = 0.0,
    ) -> tuple[int, Message, bytes]:
        status, answer, payload = super().send(method, path, body, headers, pace)
        if status == 502:
            why = self.cluster.nginx.logs().splitlines()[-3:]
            raise http.client.RemoteDisconnected(f"nginx 502 on {method} {path}: {why}")
        return status, answer, payload


def round_of_load(cluster: Cluster, world: World, http_: Http, rng: random.Random, n: int) -> str:
    threads = start_clients(
        world, http_, rng, f"r{n}", (MULTIPART_CLIENTS, REQUESTS), (TUS_CLIENTS, 1)
    )
    victim = rng.choice(sorted(cluster.nodes))
    time.sleep(rng.uniform(*KILL_AFTER))
    # Killed and started again at once: its start-up clean-up runs while the other two
    # are taking uploads, whose staged files it must leave alone.
    cluster.restart(victim)
    for thread in threads:
        thread.join(timeout=90)
        assert not thread.is_alive(), f"a client hangs after the kill (seed {world.seed})"
    return victim


def test_acknowledged_uploads_survive_servers_killed_behind_nginx(
    running: Cluster, user: str
) -> None:
    seed = int(os.environ.get("CLUSTER_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"cluster crash seed {seed}: CLUSTER_CRASH_SEED={seed} replays it")
    rng = random.Random(seed)
    world = World(seed)
    token = running.token(user)
    http_ = ThroughNginx(running, token)
    for n in range(ROUNDS):
        victim = round_of_load(running, world, http_, rng, n)
        assert not world.errors, f"seed {seed}: {world.errors}\n{running.logs()}"
        check_over_http(world, http_, rng)
        print(
            f"round {n}: killed {victim}; {len(world.acked)} acknowledged, {len(world.sent)} sent"
        )
    finish_everything(world, http_)
    assert not world.errors, f"seed {seed}: {world.errors}"
    assert not (world.retry or world.recreate or world.tus), (seed, world.tus)
    for node in running.nodes.values():
        listed = check_over_http(world, Http(node.port, token), rng)
        assert world.acked == listed.keys() == world.sent.keys(), (seed, node.name)
    running.check_store()
    assert world.seen["multipart"] and world.seen["tus"], world.seen
