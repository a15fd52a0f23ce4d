"""Pairing guesses spread over the three processes meet one budget, not three.

Each guess comes from one client address (a trusted proxy's X-Forwarded-For; the
test's connections come from the loopback, a trusted proxy) and goes to A, B and C in
turn: past the per-address limit every process refuses it, while another address is
still let in.
"""

from __future__ import annotations

import json
import random

from tests.cluster.harness import Cluster
from tests.server_cli import request

PER_ADDRESS = 20  # pairing attempts a client may make in a minute (services/auth.py)


def guess(base: str, address: str) -> tuple[int, str]:
    status, headers, body = request(
        base + "/auth/pair",
        "POST",
        json.dumps({"code": "000000", "device": "guesser"}).encode(),
        {"Content-Type": "application/json", "X-Forwarded-For": address},
    )
    code = json.loads(body)["error"]["code"]
    if status == 429:
        assert int(headers["Retry-After"]) > 0
    return status, code


def test_pairing_guesses_over_three_processes_are_throttled_as_one(running: Cluster) -> None:
    rng = random.Random()
    address = f"198.51.100.{rng.randrange(1, 255)}"
    other = f"203.0.113.{rng.randrange(1, 255)}"
    nodes = list(running.nodes.values())
    answers = [guess(nodes[n % 3].url, address) for n in range(PER_ADDRESS)]
    assert answers == [(401, "invalid_pairing_code")] * PER_ADDRESS
    for node in nodes:  # each has seen only a third of them, and each refuses
        assert guess(node.url, address) == (429, "too_many_attempts"), node.name
    assert guess(nodes[0].url, other) == (401, "invalid_pairing_code")
