"""What the bench's measurements share: a lean HTTP client, bodies, photos, server processes.

The client is HTTP/1.1 over a plain socket, kept alive: a body is a list of parts,
bytes or ranges of a file, and file ranges go out with `sendfile`, so a client sends
at the speed of the loopback and spends no CPU copying. An answer's body is read into
one reused buffer and, unless asked for, thrown away. Baseline and Tubei are measured
with this same client: that is what makes their ratio mean something.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tornado.websocket

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
API = "/api/v1"
BOUNDARY = "tubei-bench-7MA4YWxkTrZu0gW"
READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class FileRange:
    """`count` bytes of a file from `offset`: sent with sendfile, never read by Python."""

    path: Path
    offset: int
    count: int


Part = bytes | FileRange


def body_length(parts: Sequence[Part]) -> int:
    return sum(len(p) if isinstance(p, bytes) else p.count for p in parts)


def body_bytes(parts: Sequence[Part]) -> bytes:
    """The whole body in memory (for checks, never for sending)."""
    out = bytearray()
    for part in parts:
        if isinstance(part, bytes):
            out += part
        else:
            with part.path.open("rb") as f:
                f.seek(part.offset)
                out += f.read(part.count)
    return bytes(out)


def body_sha256(parts: Sequence[Part]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, bytes):
            digest.update(part)
            continue
        with part.path.open("rb") as f:
            f.seek(part.offset)
            left = part.count
            while left:
                block = f.read(min(left, 8 << 20))
                digest.update(block)
                left -= len(block)
    return digest.hexdigest()


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    length: int  # bytes of body received (kept or not)

    def json(self) -> object:
        return json.loads(self.body)


class Connection:
    """One kept-alive HTTP/1.1 connection."""

    def __init__(self, port: int, timeout: float = 300.0) -> None:
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray(READ_BUFFER)
        self._pending = b""

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._pending = sock, b""
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: Sequence[Part] = (),
        *,
        keep: bool = True,
    ) -> Response:
        sock = self._connect()
        try:
            lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            if body or method in ("POST", "PUT", "PATCH"):
                lines.append(f"Content-Length: {body_length(body)}")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self._send(sock, [head, *body])
            return self._answer(sock, method, keep)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _send(sock: socket.socket, parts: Iterable[Part]) -> None:
        small = bytearray()
        for part in parts:
            if isinstance(part, bytes):
                small += part
                continue
            if small:
                sock.sendall(small)
                small = bytearray()
            with part.path.open("rb") as f:
                sent = sock.sendfile(f, part.offset, part.count)
            if sent != part.count:
                raise HttpError(f"sendfile sent {sent} of {part.count} bytes")
        if small:
            sock.sendall(small)

    def _recv(self, sock: socket.socket) -> bytes:
        n = sock.recv_into(self._buffer)
        if n == 0:
            raise HttpError("the server closed the connection")
        return bytes(self._buffer[:n])

    def _answer(self, sock: socket.socket, method: str, keep: bool) -> Response:
        data = self._pending
        while b"\r\n\r\n" not in data:
            data += self._recv(sock)
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._pending = rest
            return Response(status, headers, b"", 0)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, self._pending = self._chunked(sock, rest)
            return Response(status, headers, body if keep else b"", len(body))
        length = int(headers.get("content-length", "0"))
        kept = bytearray(rest[:length]) if keep else bytearray()
        got = min(len(rest), length)
        self._pending = rest[length:]
        view = memoryview(self._buffer)
        while got < length:
            n = sock.recv_into(view[: min(READ_BUFFER, length - got)])
            if n == 0:
                raise HttpError("the server closed the connection mid-answer")
            if keep:
                kept += view[:n]
            got += n
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, bytes(kept), got)

    def _chunked(self, sock: socket.socket, data: bytes) -> tuple[bytes, bytes]:
        body = bytearray()
        while True:
            while b"\r\n" not in data:
                data += self._recv(sock)
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += self._recv(sock)
            body += data[:size]
            data = data[size + 2 :]
            if size == 0:
                return bytes(body), data


# bodies and photos ------------------------------------------------------------------


def multipart_body(filename: str, file_parts: Sequence[Part]) -> tuple[list[Part], str]:
    """One file in a multipart/form-data body, as `wx.uploadFile` sends it."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="photo"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return [head, *file_parts, tail], f"multipart/form-data; boundary={BOUNDARY}"


def unique_jpeg(base: Path, tag: str) -> list[Part]:
    """`base` (a JPEG file) made unique: a comment segment with `tag` right after SOI.

    The pixels, the EXIF and the decoding work are the base's; the bytes (and so the
    SHA-256, which is the photo's identity in Tubei) are new, for the cost of a few bytes.
    """
    payload = tag.encode()
    comment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return [b"\xff\xd8" + comment, FileRange(base, 2, base.stat().st_size - 2)]


# server processes --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, ... of a process, in bytes."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                found[name] = int(value.split()[0]) * 1024
    return found


def environment() -> dict[str, str]:
    # The caller's settings stay out, but for TUBEI_METRICS: runs with metrics on and off compare.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TUBEI_") or k == "TUBEI_METRICS"
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


class ServerProcess:
    """A server in its own process, on its own port, logging to a file."""

    name = "server"

    def __init__(self, workdir: Path, label: str) -> None:
        self.workdir = workdir
        self.env: dict[str, str] = {}  # more environment (credentials a setting reads)
        self.label = label
        self.port = free_port()
        self.log = workdir / f"{label}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env={**environment(), **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited:\n{self.log.read_text()[-3000:]}")
            try:
                answer = Connection(self.port, timeout=2).request("GET", self.health_path())
                if answer.status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def health_path(self) -> str:
        return "/health"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawServer(ServerProcess):
    def __init__(self, workdir: Path, label: str = "raw") -> None:
        super().__init__(workdir, label)
        self.folder = workdir / label
        self.folder.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        script = str(ROOT / "scripts" / "bench_raw.py")
        return [sys.executable, script, "--port", str(self.port), "--dir", str(self.folder)]


class TubeiServer(ServerProcess):
    def __init__(
        self,
        workdir: Path,
        label: str = "tubei",
        data: Path | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, label)
        self.data = data or workdir / label
        self.extra = list(extra)  # more `serve` settings
        self.tokens: dict[str, str] = {}

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--data",
            str(self.data),
            "--log-level",
            "warning",
            *self.extra,
        ]

    def health_path(self) -> str:
        return f"{API}/health"

    def start(self) -> None:
        super().start()
        self.token()  # made now, so that no timed request waits for the command

    def token(self, user: str = "bench") -> str:
        """A bearer token for `user` (made with the CLI, which works beside a server)."""
        if user not in self.tokens:
            made = subprocess.run(
                [sys.executable, "-m", "server", "token", "--data", str(self.data), "--user", user],
                cwd=ROOT,
                env=environment(),
                capture_output=True,
                text=True,
                check=True,
            )
            self.tokens[user] = made.stdout.strip().rsplit("\n", 1)[-1]
        return self.tokens[user]

    def auth(self, user: str = "bench") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


# profiles -----------------------------------------------------------------------------


@dataclass
class Profile:
    """py-spy attached to a server while one measurement runs: where its CPU went."""

    pid: int
    out: Path
    process: subprocess.Popen[bytes] | None = None
    samples: Counter[str] = field(default_factory=Counter)

    def start(self) -> None:
        spy = Path(sys.executable).with_name("py-spy")
        command = [
            str(spy),
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            str(RATE),
            "--threads",
            "--format",
            "raw",
            "--output",
            str(self.out),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.3)  # let it attach

    def stop(self) -> list[str]:
        """Stop recording; the hottest functions by self time, then by total time."""
        if self.process is None:
            return []
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        if not self.out.exists():
            return ["(py-spy wrote no profile: can it attach here? try as root)"]
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        threads: Counter[str] = Counter()
        idle = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
            n = int(count)
            if frames[-1].split(" ")[0] in IDLE_LEAVES:
                idle += n
                continue
            thread = re.sub(r"^thread \(\d+\):? ?", "", frames[0]) or "?"
            threads[re.sub(r"_\d+$", "", thread)] += n
            own[frames[-1]] += n
            for frame in set(frames[1:]):
                total[frame] += n
        busy = sum(own.values()) or 1
        seconds = (busy + idle) / RATE / max(1, len(threads))
        report = [f"profile {self.out.name}: {busy} busy samples at {RATE} Hz (idle left out)"]
        report.append(
            "  busy by thread: "
            + ", ".join(f"{t} {n / RATE:.1f} s" for t, n in threads.most_common(6))
            + f" (over about {seconds:.0f} s)"
        )
        report.append("  self time:")
        report += [f"    {n / busy:5.1%}  {f}" for f, n in own.most_common(15)]
        report.append("  total time (server code):")
        ours = [(f, n) for f, n in total.most_common() if "server/" in f]
        report += [f"    {n / busy:5.1%}  {f}" for f, n in ours[:15]]
        return report


# Where a thread waits for work rather than doing it.
IDLE_LEAVES = {"_worker", "EpollSelector.select", "Condition.wait", "Event.wait", "select"}
RATE = 200


def query(path: str, **params: object) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"


# events -------------------------------------------------------------------------------


@dataclass
class Socket:
    """What one events WebSocket heard."""

    user: str
    messages: int = 0
    added: set[str] = field(default_factory=set)  # image ids of `image.added`
    done: set[str] = field(default_factory=set)  # upload ids of `upload.done`
    closed: str | None = None  # why, if the server closed it


class EventWatcher:
    """Many events WebSockets, read on an event loop of their own in a thread."""

    def __init__(self, port: int, users: Sequence[tuple[str, str]]) -> None:
        self.port = port
        self.users = list(users)  # (user, token), one a socket
        self.sockets = [Socket(user) for user, _ in self.users]
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=120):
            raise RuntimeError("the events sockets did not all connect")
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            connections = []
            for (_, token), socket_ in zip(self.users, self.sockets, strict=True):
                url = f"ws://{HOST}:{self.port}{API}/events?token={token}"
                connection = await tornado.websocket.websocket_connect(
                    url, max_message_size=1 << 20
                )
                hello = await connection.read_message()
                if not isinstance(hello, str) or json.loads(hello).get("type") != "hello":
                    raise RuntimeError(f"the first event was {hello!r}, not hello")
                connections.append((connection, socket_))
        except BaseException as error:
            self._failure = error
            self._ready.set()
            return
        readers = [asyncio.create_task(self._read(c, s)) for c, s in connections]
        self._ready.set()
        await self._stop.wait()
        for connection, _ in connections:
            connection.close()
        await asyncio.gather(*readers, return_exceptions=True)

    async def _read(
        self, connection: tornado.websocket.WebSocketClientConnection, socket_: Socket
    ) -> None:
        while (message := await connection.read_message()) is not None:
            socket_.messages += 1
            event = json.loads(message)
            if event["type"] == "image.added":
                socket_.added.add(event["image"]["id"])
            elif event["type"] == "upload.done":
                socket_.done.add(event["upload_id"])
        if self._stop is not None and not self._stop.is_set():
            socket_.closed = f"{connection.close_code} {connection.close_reason}"

    def wait_for(self, added: dict[str, set[str]], timeout: float) -> list[str]:
        """Wait until every socket heard `image.added` for its user's photos; what is missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [
                f"socket {n} ({s.user}): {len(added.get(s.user, set()) - s.added)} not announced"
                for n, s in enumerate(self.sockets)
                if added.get(s.user, set()) - s.added
            ]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.1)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)


# uploaders in processes of their own ------------------------------------------------


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
