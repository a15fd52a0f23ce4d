"""tus with a data folder per process: nginx sends all of one upload to one process.

An upload's staged file is on the disk of the process that took its chunks, so
docs/nginx/tubei.conf routes `/api/v1/uploads/<id>` by a hash of the id: resumed over
many PATCHes (and POSTs with X-HTTP-Method-Override) through nginx, every request of
it reaches the same process, its file is on that process's disk only, and the photo
is byte-exact on every process. A PATCH that reaches another process (nginx bypassed
here, as when the chosen process is down) finds no file, and the upload starts over
from 0, which the client is told: nothing wrong is ever stored.
"""

from __future__ import annotations

import time

from tests.cluster.client import auth
from tests.cluster.harness import Cluster
from tests.cluster.test_s3 import get, upstreams
from tests.cluster.test_tus import TUS, create, offset, patch
from tests.conftest import unique_jpeg
from tests.server_cli import request

CHUNK = 48 * 1024


def staged_on(cluster: Cluster, upload_id: str) -> list[str]:
    """The processes with a staged file of this upload in their own data folder."""
    return [n for n in cluster.nodes if (cluster.data_of(n) / "tmp" / "tus" / upload_id).exists()]


def routed(cluster: Cluster, upload_id: str, count: int) -> list[str]:
    """Where nginx sent this upload's `count` requests (HEAD, PATCH, POST): nginx writes
    a request's log line just after its answer, so the last may take a moment."""
    deadline = time.monotonic() + 5
    while True:
        path = f"/api/v1/uploads/{upload_id}"
        routes = [r for m in ("HEAD", "PATCH", "POST") for r in upstreams(cluster, m, path)]
        if len(routes) >= count or time.monotonic() > deadline:
            assert len(routes) == count, routes
            return routes
        time.sleep(0.05)


def send(base: str, token: str, upload_id: str, at: int, piece: bytes, override: bool) -> int:
    """One PATCH (or POST overriding to PATCH, as the mini-program sends); the offset."""
    if override:
        headers = auth(
            token,
            **TUS,
            **{
                "Upload-Offset": str(at),
                "Content-Type": "application/offset+octet-stream",
                "X-HTTP-Method-Override": "PATCH",
            },
        )
        status, answer, body = request(f"{base}/uploads/{upload_id}", "POST", piece, headers)
    else:
        status, answer, body = patch(base, token, upload_id, at, piece)
    assert status == 204, (status, body)
    return int(answer["Upload-Offset"])


def test_a_tus_upload_resumed_over_many_patches_through_nginx(s3_up: Cluster, user: str) -> None:
    token = s3_up.token(user)
    uploads = {}
    for _ in range(3):  # three ids, routed each to its own process (by the hash)
        data = unique_jpeg((800, 600)) + bytes(range(256)) * 1024  # a JPEG may carry a tail
        uploads[create(s3_up.url, token, len(data))] = data
    where: dict[str, list[str]] = {}
    for upload_id, data in uploads.items():
        at, n = 0, 0
        while at < len(data):
            at = send(s3_up.url, token, upload_id, at, data[at : at + CHUNK], n % 2 == 1)
            n += 1
            if at < len(data):
                assert offset(s3_up.url, token, upload_id) == at
                where[upload_id] = staged_on(s3_up, upload_id)
                assert len(where[upload_id]) == 1, where  # on one process's disk only
        assert n >= 6
        routes = routed(s3_up, upload_id, 2 * n - 1)
        assert len(set(routes)) == 1, routes
        assert not staged_on(s3_up, upload_id)  # ingested: the staged file went
    for node in s3_up.nodes.values():
        for upload_id, data in uploads.items():
            _, answer, _ = request(
                f"{node.url}/uploads/{upload_id}", "HEAD", None, auth(token, **TUS)
            )
            image = answer["Tubei-Image-Id"]
            assert get(f"{node.url}/images/{image}/original", token) == (200, data), node.name


def test_a_patch_on_a_process_without_the_file_starts_the_upload_over(
    s3_up: Cluster, user: str
) -> None:
    token = s3_up.token(user)
    data = unique_jpeg((640, 480)) + bytes(200 * 1024)
    upload_id = create(s3_up.url, token, len(data))
    at = send(s3_up.url, token, upload_id, 0, data[:CHUNK], False)
    (owner,) = staged_on(s3_up, upload_id)
    stranger = s3_up.nodes[next(n for n in s3_up.nodes if n != owner)]
    status, answer, body = patch(stranger.url, token, upload_id, at, data[at : at + CHUNK])
    assert status == 409 and answer["Upload-Offset"] == "0", (status, body)
    assert offset(s3_up.url, token, upload_id) == 0
    at = 0  # the client starts over, through nginx: the owner cuts its file back
    while at < len(data):
        at = send(s3_up.url, token, upload_id, at, data[at : at + CHUNK], False)
    _, answer, _ = request(f"{stranger.url}/uploads/{upload_id}", "HEAD", None, auth(token, **TUS))
    image = answer["Tubei-Image-Id"]
    for node in s3_up.nodes.values():
        assert get(f"{node.url}/images/{image}/original", token) == (200, data), node.name
