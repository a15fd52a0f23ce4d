"""The bench's HTTP client, and the bodies it sends: one file as multipart, unique photos.

The client is HTTP/1.1 over a plain socket, kept alive: a body is a list of parts,
bytes or ranges of a file, and file ranges go out with `sendfile`, so a client sends
at the speed of the loopback and spends no CPU copying. An answer's body is read into
one reused buffer and, unless asked for, thrown away. Baseline and Tubei are measured
with this same client: that is what makes their ratio mean something. The servers it
talks to are `bench_servers`' processes.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def query(path: str, **params: object) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"
