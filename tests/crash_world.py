"""What the crash proof's clients and checks share: sizes, photos, what was acknowledged."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from PIL import Image

from server.__main__ import COMMANDS

ROUNDS = 8
MULTIPART_CLIENTS = 3
TUS_CLIENTS = 2
PHOTOS_PER_CLIENT = 24  # more than a client sends before the kill, usually
TUS_PER_CLIENT = 3
KILL_AFTER = (0.1, 1.2)  # seconds of load before the SIGKILL
SEND_PIECE = 64 * 1024
API = "/api/v1"
UPLOADS = f"{API}/uploads/"
TUS = {"Tus-Resumable": "1.0.0"}
SHA256_HEX = 64
# The server dying shows up as any of these in the client.
CUT_OFF = (OSError, http.client.HTTPException)
# `python -m server scrub` runs after each restart.
HAS_SCRUB = "scrub" in COMMANDS


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes

    @functools.cached_property
    def sha(self) -> str:
        return sha256(self.data)


def noise_jpeg(rng: random.Random, size: tuple[int, int]) -> bytes:
    """A real JPEG of random pixels: unique, and hardly compressible."""
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=rng.choice((80, 92)))
    return out.getvalue()


def photos(rng: random.Random, prefix: str, sizes: list[tuple[int, int]]) -> Iterator[Photo]:
    for n in range(10**6):
        yield Photo(f"{prefix}-{n:04d}.jpg", noise_jpeg(rng, rng.choice(sizes)))


# Mostly phone-shared sizes, some big enough that a kill lands mid-body.
MULTIPART_SIZES = [(160, 120)] * 5 + [(640, 480)] * 3 + [(1200, 900)] * 2
TUS_SIZES = [(900, 700), (1200, 900), (1400, 1000)]


@dataclass(eq=False)
class TusUpload:
    photo: Photo
    url: str
    offset: int = 0  # the last Upload-Offset the server answered
    in_flight: int = 0  # bytes of the PATCH being sent (when the server died)
    # The last PATCH was cut off, and the offset did not move: the server may have died
    # inside the ingest, after the staged file went to the store, so that the upload
    # now starts over from 0 (the one 409 this test accepts).
    may_restart: bool = False

    @property
    def length(self) -> int:
        return len(self.photo.data)


@dataclass
class World:
    """What the clients know, across rounds: what they sent and what was acknowledged."""

    seed: int
    sent: dict[str, bytes] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    retry: list[list[Photo]] = field(default_factory=list)  # multipart requests cut off
    recreate: list[Photo] = field(default_factory=list)  # tus creations cut off
    tus: list[TusUpload] = field(default_factory=list)  # unfinished, with a known URL
    checked: set[str] = field(default_factory=set)  # originals already compared over HTTP
    # Files on disk already found whole, as they were then: read again only if they change.
    whole: dict[Path, tuple[int, int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    moved: set[str] = field(default_factory=set)  # tus uploads killed inside their ingest
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Processes with data folders of their own (tests/cluster/test_s3_crash.py): a tus
    # upload whose process was down, or whose creation another process took, reaches
    # a process whose own file of it is shorter (none: 0), which answers 409 with
    # that offset; the client goes back to it.
    restarts_anywhere: bool = False

    def sending(self, batch: list[Photo]) -> None:
        with self.lock:
            for photo in batch:
                self.sent[photo.sha] = photo.data

    def acknowledged(self, sha: str, how: str) -> None:
        with self.lock:
            self.acked.add(sha)
            self.seen[how] += 1

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def note(self, what: str) -> None:
        with self.lock:
            self.seen[what] += 1


class Http:
    """One request a connection, its body sent in pieces (paced, if asked)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        pace: float = 0.0,
    ) -> tuple[int, Message, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            connection.putheader("Authorization", f"Bearer {self.token}")
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            if body or method in ("POST", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders()
            for start in range(0, len(body), SEND_PIECE):
                connection.send(body[start : start + SEND_PIECE])
                if pace:
                    time.sleep(pace)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()
