"""The pool of threads for file work is sized by the cores the process may run on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.services import io_threads

ROOT = Path(__file__).resolve().parents[2]


def test_two_more_threads_than_cores_and_at_most_32() -> None:
    assert io_threads(1) == 3
    assert io_threads(2) == 4
    assert io_threads(64) == 32


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_a_process_held_to_one_core_gets_three_threads() -> None:
    # As in a container given one CPU of a larger machine: its cpuset, not the machine.
    probe = (
        "import os\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from server.services import io_threads\n"
        "print(io_threads())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "3"
