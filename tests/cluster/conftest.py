"""One cluster for the whole session (tests/cluster/harness.py): starting PostgreSQL,
Redis, three servers and nginx costs seconds, so every test here shares it, each with
users of its own, and leaves it running (restarted where it stopped a part).

`s3_cluster` is a second one, asked for only by the tests of S3 (test_s3*.py): the
blobs in the session's Ceph gateway (tests/s3_gateway.py), a data folder per process.

Where the parts cannot be had (no initdb, redis-server or nginx; not root), one line
says why and only the tests in this folder are skipped."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.s3_gateway import Gateway
from tests.cluster.harness import Cluster, problem
from tests.s3_gateway import BUCKET, REGION, gateway_client

_said: list[str] = []


def skip_without_parts(pytestconfig: pytest.Config) -> None:
    reason = problem()
    if reason:
        if not _said:  # once: pytest keeps the session fixture's skip for the others
            _said.append(reason)
            capture = pytestconfig.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print(f"\ncluster tests skipped: {reason}")
        pytest.skip(f"cluster tests skipped: {reason}")


def started(made: Cluster) -> Cluster:
    try:
        made.start()
    except BaseException:
        print(made.logs(), file=sys.stderr)
        made.close()
        raise
    return made


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    skip_without_parts(pytestconfig)
    folder = Path(tempfile.mkdtemp(prefix="tubei-cluster-"))
    made = started(Cluster(folder))
    yield made
    made.close()
    shutil.rmtree(folder, ignore_errors=True)


def s3_url(gateway: Gateway, prefix: str) -> str:
    return f"s3://{BUCKET}/{prefix}?endpoint={gateway.endpoint}&region={REGION}&addressing=path"


@pytest.fixture(scope="session")
def s3_cluster(pytestconfig: pytest.Config, s3_gateway: Gateway) -> Iterator[Cluster]:
    """Blobs and thumbnails in a prefix of the gateway's bucket of this cluster's own,
    a data folder per process; `--metrics` on each (its decodes are counted)."""
    skip_without_parts(pytestconfig)
    folder = Path(tempfile.mkdtemp(prefix="tubei-s3-cluster-"))
    made = Cluster(
        folder,
        blobs=s3_url(s3_gateway, f"cluster-{uuid.uuid4().hex[:8]}"),
        separate=True,
        flags=("--metrics",),
        TUBEI_S3_ACCESS_KEY_ID=s3_gateway.access_key,
        TUBEI_S3_SECRET_ACCESS_KEY=s3_gateway.secret_key,
    )
    yield started(made)
    made.close()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def s3_up(s3_cluster: Cluster) -> Iterator[Cluster]:
    """The S3 cluster with all its parts up, before and after the test."""
    s3_cluster.ensure_running()
    yield s3_cluster
    s3_cluster.ensure_running()


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


@pytest.fixture
def bucket(s3_gateway: Gateway) -> Any:
    """A plain botocore client on the gateway, to look into the bucket."""
    return gateway_client(s3_gateway)
