"""One cluster for the whole session (tests/cluster/harness.py): starting PostgreSQL,
Redis, three servers and nginx costs seconds, so every test here shares it, each with
users of its own, and leaves it running (restarted where it stopped a part).

Where the parts cannot be had (no initdb, redis-server or nginx; not root), one line
says why and only the tests in this folder are skipped."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, problem

_said: list[str] = []


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    reason = problem()
    if reason:
        if not _said:  # once: pytest keeps the session fixture's skip for the others
            _said.append(reason)
            capture = pytestconfig.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print(f"\ncluster tests skipped: {reason}")
        pytest.skip(f"cluster tests skipped: {reason}")
    folder = Path(tempfile.mkdtemp(prefix="tubei-cluster-"))
    made = Cluster(folder)
    try:
        made.start()
    except BaseException:
        print(made.logs(), file=sys.stderr)
        made.close()
        raise
    yield made
    made.close()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def running(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with all its parts up, before and after the test."""
    cluster.ensure_running()
    yield cluster
    cluster.ensure_running()


@pytest.fixture
def user() -> str:
    """A user of this test's own, so that tests on the shared catalog do not meet."""
    return f"u{uuid.uuid4().hex[:10]}"
