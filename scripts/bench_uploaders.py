"""Uploaders for the load: threads uploading photo after photo, run in processes of their own.

`uploaders` is what each process runs (so it is kept in a module light to import).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench_http import (
    API,
    Connection,
    HttpError,
    body_length,
    body_sha256,
    multipart_body,
    unique_jpeg,
)


@dataclass(frozen=True)
class Job:
    """One uploader: as whom, how, and where."""

    user: str
    token: str
    kind: str  # "multipart", "tus", or "raw" (the baseline's /upload)
    tag: str


def upload_once(connection: Connection, job: Job, photo: Path, tag: str) -> str:
    """Upload one unique copy of `photo`; its sha256. Raises HttpError when refused."""
    parts = unique_jpeg(photo, tag)
    sha = body_sha256(parts)
    auth = {"Authorization": f"Bearer {job.token}"}
    if job.kind == "tus":
        length = body_length(parts)
        created = connection.request(
            "POST",
            f"{API}/uploads/",
            {**auth, "Tus-Resumable": "1.0.0", "Upload-Length": str(length)},
        )
        if created.status != 201:
            raise HttpError(f"tus creation: {created.status} {created.body[:200]!r}")
        patched = connection.request(
            "PATCH",
            created.headers["location"],
            {
                **auth,
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            parts,
        )
        if patched.status != 204 or patched.headers.get("tubei-image-id") != sha:
            raise HttpError(f"tus PATCH: {patched.status} {patched.headers} {patched.body[:200]!r}")
        return sha
    body, content_type = multipart_body(f"{tag}.jpg", parts)
    if job.kind == "raw":
        answer = connection.request("POST", "/upload", {"Content-Type": content_type}, body)
        if answer.status != 200:
            raise HttpError(f"raw upload: {answer.status}")
        return sha
    headers = {**auth, "Content-Type": content_type, "X-Upload-Id": tag}
    answer = connection.request("POST", f"{API}/images", headers, body)
    if answer.status != 200:
        raise HttpError(f"multipart upload: {answer.status} {answer.body[:200]!r}")
    items = answer.json()["items"]  # type: ignore[index]
    if items[0]["sha256"] != sha:
        raise HttpError(f"multipart upload stored {items[0]['sha256']}, not {sha}")
    return sha


def uploaders(port: int, jobs: list[Job], photo: Path, seconds: float) -> dict[str, object]:
    """Run one thread a job, each uploading photo after photo until the time is up."""
    deadline = time.monotonic() + seconds
    acked: dict[str, list[str]] = {}
    errors: list[str] = []
    latencies: list[tuple[float, float]] = []  # (when it was acknowledged, seconds it took)
    lock = threading.Lock()

    def run(job: Job) -> None:
        connection = Connection(port, timeout=120)
        n = 0
        while time.monotonic() < deadline:
            tag = f"{job.tag}-{n}"
            n += 1
            started = time.perf_counter()
            try:
                sha = upload_once(connection, job, photo, tag)
            except (OSError, HttpError, KeyError, ValueError) as error:
                with lock:
                    errors.append(f"{job.kind} {tag}: {error!r}"[:300])
                connection.close()
                continue
            with lock:
                acked.setdefault(job.user, []).append(sha)
                latencies.append((time.monotonic(), time.perf_counter() - started))
        connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"acked": acked, "errors": errors, "latencies": latencies}
