"""pytest fixtures for a real Ceph RADOS Gateway: one per session, only when asked for.

`s3_gateway` starts it (installing Ceph with apt-get where it can) the first time a
test asks for it, and stops it at the end of the session. Where it cannot, one line
says why and every test that asks for it is skipped; nothing else is.
`s3_location` is a fresh prefix in the session's bucket for each test.
TUBEI_S3_START_TIMEOUT (seconds, default 150) bounds the start-up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import botocore.session
import pytest

from scripts.s3_gateway import START_TIMEOUT, Gateway, GatewayUnavailable
from server.storage.s3_config import S3Location

BUCKET = "tubei-test"
REGION = "us-east-1"


def gateway_client(gateway: Gateway) -> object:
    """A plain (blocking) botocore client on the gateway, for set-up and checks."""
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=gateway.endpoint,
        region_name=REGION,
        aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 3},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture(scope="session")
def s3_gateway(pytestconfig: pytest.Config) -> Iterator[Gateway]:
    try:
        gateway = Gateway.start(float(os.environ.get("TUBEI_S3_START_TIMEOUT", START_TIMEOUT)))
    except (GatewayUnavailable, ValueError) as error:
        # One line, past the output capture; each test then skips with a short reason.
        capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
        reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        if capture is not None and reporter is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"\nS3 tests skipped: {error}")
        # The reason in the skip too: a worker of `pytest -n` has no terminal to print to.
        pytest.skip(f"no S3 gateway here: {error}")
    try:
        client = gateway_client(gateway)
        client.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def s3_location(s3_gateway: Gateway) -> S3Location:
    return S3Location(
        bucket=BUCKET,
        prefix=f"t-{uuid.uuid4().hex[:12]}/",
        endpoint=s3_gateway.endpoint,
        region=REGION,
        addressing="path",
        access_key=s3_gateway.access_key,
        secret_key=s3_gateway.secret_key,
    )


@pytest.fixture
def s3_running(s3_gateway: Gateway) -> Iterator[Gateway]:
    """The gateway, for a test that stops radosgw: it is serving again afterwards."""
    yield s3_gateway
    if "rgw" not in s3_gateway.pids:
        s3_gateway.start_rgw(wait=90)
