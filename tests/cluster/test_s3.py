"""Three servers on the bucket, each with a data folder of its own (`s3_cluster`).

Nothing is shared on the local disk: the originals and the thumbnails are in the
Ceph gateway's bucket, the catalog in PostgreSQL, the events in Redis. Uploads through
nginx land on any process and are served byte-exact by every other; a thumbnail one
process made is fetched from the bucket by the others, not decoded again (their decode
counters, from /metrics, do not move); a photo purged through one is gone from the
bucket after gc on another; a signed URL one process issued opens on the others.
"""

from __future__ import annotations

import hashlib
import re
import time
import urllib.parse
from collections.abc import Collection
from typing import Any

from tests.cluster.client import auth, call, listing, uploaded
from tests.cluster.harness import Cluster, Node
from tests.conftest import unique_jpeg
from tests.s3_gateway import BUCKET
from tests.server_cli import request

SIZES = ("grid", "preview")


def prefix_of(cluster: Cluster) -> str:
    assert cluster.blobs is not None
    return urllib.parse.urlsplit(cluster.blobs).path.strip("/") + "/"


def keys(bucket: Any, cluster: Cluster, under: str) -> list[str]:
    found: list[str] = []
    for page in bucket.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix_of(cluster) + under
    ):
        found += [item["Key"] for item in page.get("Contents", [])]
    return found


def check_bucket(bucket: Any, cluster: Cluster, expected: Collection[str] = ()) -> None:
    """Every blob row (`expected` among them) has its object in the bucket, hashing to
    its name; every entry has its blob row; no process keeps an original on its disk."""
    import psycopg

    with psycopg.connect(cluster.postgres.url) as conn:
        blobs = [row[0] for row in conn.execute("SELECT sha256 FROM blobs").fetchall()]
        orphans = conn.execute(
            "SELECT count(*) FROM entries e LEFT JOIN blobs b ON b.sha256 = e.sha256"
            " WHERE b.sha256 IS NULL"
        ).fetchone()
    assert orphans is not None and orphans[0] == 0
    assert set(expected) <= set(blobs), set(expected) - set(blobs)
    for sha in blobs:
        got = bucket.get_object(Bucket=BUCKET, Key=f"{prefix_of(cluster)}blobs/{sha}")
        assert hashlib.sha256(got["Body"].read()).hexdigest() == sha, sha
    for name in cluster.nodes:
        local = cluster.data_of(name) / "blobs"
        assert not local.exists() or not any(p.is_file() for p in local.rglob("*")), name


def metric(node: Node, name: str, **labels: str) -> float:
    status, _, body = request(node.url.removesuffix("/api/v1") + "/metrics")
    assert status == 200, body[:200]
    total = 0.0
    for line in body.decode().splitlines():
        found = re.match(rf"{name}(?:\{{([^}}]*)\}})? (\S+)$", line)
        if found and all(f'{k}="{v}"' in (found.group(1) or "") for k, v in labels.items()):
            total += float(found.group(2))
    return total


def decodes(node: Node) -> float:
    return metric(node, "tubei_decode_attempts_total", outcome="made")


def wait_idle(cluster: Cluster, timeout: float = 30) -> None:
    """No process has a thumbnail queued or being made."""
    deadline = time.monotonic() + timeout
    for node in cluster.nodes.values():
        while (
            metric(node, "tubei_thumbnail_queue_depth")
            or metric(node, "tubei_thumbnails_in_progress")
        ) and time.monotonic() < deadline:
            time.sleep(0.1)


def upstreams(cluster: Cluster, method: str, path_start: str) -> list[str]:
    """The processes (host:port) nginx sent these requests to, in order (its access log)."""
    lines = cluster.nginx.access_log.read_text().splitlines()
    pattern = re.compile(rf'"{method} {re.escape(path_start)}\S* HTTP/1.1" \d+ \d+ upstream=(\S+)')
    return [m.group(1) for m in map(pattern.search, lines) if m]


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    status, _, body = request(url, headers=auth(token) if token else None)
    return status, body


def test_uploads_through_nginx_are_served_by_every_process(
    s3_up: Cluster, user: str, bucket: Any
) -> None:
    token = s3_up.token(user)
    sent = {}
    for n in range(6):
        data = unique_jpeg((96, 72))
        item = uploaded(s3_up.url, token, f"n{n}.jpg", data)
        sent[item["id"]] = data
    taken = upstreams(s3_up, "POST", "/api/v1/images")[-6:]
    assert len(set(taken)) >= 2, taken  # nginx spread them: they crossed processes
    for node in s3_up.nodes.values():
        assert {i["id"] for i in listing(node.url, token)} == set(sent), node.name
        for image, data in sent.items():
            assert get(f"{node.url}/images/{image}/original", token) == (200, data), node.name
    check_bucket(bucket, s3_up, sent)


def test_thumbnails_made_by_one_are_fetched_from_the_bucket_by_the_others(
    s3_up: Cluster, user: str, bucket: Any
) -> None:
    a, b, c = (s3_up.nodes[n] for n in ("a", "b", "c"))
    token = s3_up.token(user)
    items = [uploaded(a.url, token, f"t{n}.jpg", unique_jpeg((640, 480))) for n in range(2)]
    made: dict[tuple[str, str], bytes] = {}
    for item in items:
        for size in SIZES:
            status, body = get(f"{a.url}/images/{item['id']}/thumbnail?size={size}", token)
            assert status == 200 and body[:2] == b"\xff\xd8", (status, body[:200])
            made[item["id"], size] = body
    wait_idle(s3_up)
    for item in items:  # in the bucket: two sizes, under derived/<sha256>/
        deadline = time.monotonic() + 10
        while len(keys(bucket, s3_up, f"derived/{item['id']}/")) < 2:
            assert time.monotonic() < deadline, keys(bucket, s3_up, "derived/")
            time.sleep(0.1)
    before = {node.name: decodes(node) for node in (b, c)}
    for node in (b, c):
        assert not list((s3_up.data_of(node.name) / "thumbs").rglob(f"{items[0]['id']}*"))
        for (image, size), body in made.items():
            assert get(f"{node.url}/images/{image}/thumbnail?size={size}", token) == (200, body)
    assert {node.name: decodes(node) for node in (b, c)} == before  # none decoded again
    # ... and each now holds them in its own cache.
    assert list((s3_up.data_of("b") / "thumbs").rglob(f"{items[0]['id']}*"))


def test_a_signed_url_issued_by_one_opens_on_the_others(s3_up: Cluster, user: str) -> None:
    token = s3_up.token(user)
    data = unique_jpeg((320, 240))
    item = uploaded(s3_up.nodes["c"].url, token, "signed.jpg", data)
    for name in ("a", "b"):
        root = s3_up.nodes[name].url.removesuffix("/api/v1")
        assert get(root + item["signed_urls"]["original"]) == (200, data), name
        status, body = get(root + item["signed_urls"]["preview"])
        assert status == 200 and body[:2] == b"\xff\xd8", name
    forged = item["signed_urls"]["original"].replace("signature=", "signature=0")
    assert get(s3_up.nodes["a"].url.removesuffix("/api/v1") + forged)[0] == 403


def test_purged_through_one_is_collected_from_the_bucket_by_another(
    s3_up: Cluster, user: str, bucket: Any
) -> None:
    b, c = s3_up.nodes["b"], s3_up.nodes["c"]
    s3_up.restart("a", "--gc-interval", "1", "--gc-grace", "0")
    try:
        token = s3_up.token(user)
        data, kept = unique_jpeg((400, 300)), unique_jpeg((400, 300))
        item = uploaded(b.url, token, "gone.jpg", data)
        other = uploaded(c.url, token, "kept.jpg", kept)
        sha = item["id"]
        assert get(f"{c.url}/images/{sha}/thumbnail?size=preview", token)[0] == 200
        wait_idle(s3_up)
        assert keys(bucket, s3_up, f"blobs/{sha}") and keys(bucket, s3_up, f"derived/{sha}/")
        call(c.url, f"/images/{sha}", token, "DELETE")  # to the trash: still served
        assert get(f"{b.url}/images/{sha}/original", token) == (200, data)
        call(b.url, f"/trash/{sha}", token, "DELETE")  # purged: A's gc takes the bytes
        deadline = time.monotonic() + 20
        while keys(bucket, s3_up, f"blobs/{sha}") or keys(bucket, s3_up, f"derived/{sha}/"):
            assert time.monotonic() < deadline, keys(bucket, s3_up, "")
            time.sleep(0.2)
        assert not keys(bucket, s3_up, f"graveyard/{sha}")
        for node in s3_up.nodes.values():
            assert get(f"{node.url}/images/{sha}/original", token)[0] == 404, node.name
            assert [i["id"] for i in listing(node.url, token)] == [other["id"]], node.name
            assert get(f"{node.url}/images/{other['id']}/original", token) == (200, kept)
    finally:
        s3_up.restart("a")
