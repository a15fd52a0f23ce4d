"""What the handler tests share: photos made to order, the data folder, raw HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
import zlib
from pathlib import Path
from typing import Any

from PIL import Image
from tornado.tcpclient import TCPClient

from server.config import Settings
from server.storage.local_staging import LOCK_NAME
from server.storage.local_staging import PREFIX as STAGING_PREFIX
from tests.conftest import Api

API = "/api/v1"

TAG_ORIENTATION = 0x0112
TAG_MAKE = 0x010F
IFD_EXIF = 0x8769
IFD_GPS = 0x8825
TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011


def photo(
    size: tuple[int, int] = (64, 48),
    *,
    taken: str | None = None,
    offset: str | None = None,
    orientation: int | None = None,
    gps: bool = False,
    halves: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None,
) -> bytes:
    """A JPEG no other call returns, with the EXIF asked for.

    `halves` paints the left half in one colour and the right half in the other,
    so that a rotation can be told from its mirror image.
    """
    image = Image.new("RGB", size, (40, 90, 160))
    if halves is not None:
        image.paste(halves[0], (0, 0, size[0] // 2, size[1]))
        image.paste(halves[1], (size[0] // 2, 0, size[0], size[1]))
    else:
        image.paste(Image.frombytes("RGB", (4, 4), uuid.uuid4().bytes * 3), (0, 0))
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(IFD_EXIF)[TAG_DATETIME_ORIGINAL] = taken
    if offset is not None:
        exif.get_ifd(IFD_EXIF)[TAG_OFFSET_TIME_ORIGINAL] = offset
    if orientation is not None:
        exif[TAG_ORIENTATION] = orientation
    if gps:
        exif[TAG_MAKE] = "TubeiCam"
        gps_ifd = exif.get_ifd(IFD_GPS)
        gps_ifd[1] = "N"
        gps_ifd[2] = (31.0, 14.0, 2.5)
        gps_ifd[3] = "E"
        gps_ifd[4] = (121.0, 28.0, 1.5)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif, comment=uuid.uuid4().hex.encode())
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (40, 30)) -> bytes:
    image = Image.new("RGB", size, (10, 200, 90))
    image.paste(Image.frombytes("RGB", (4, 4), uuid.uuid4().bytes * 3), (0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def truncated_png() -> bytes:
    """A PNG signature and a valid IHDR, then garbage: not decodable, still a PNG."""
    ihdr = png_chunk(b"IHDR", (64).to_bytes(4, "big") + (48).to_bytes(4, "big") + b"\x08\x02\0\0\0")
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"\x13\x37garbage" + uuid.uuid4().bytes * 8


def broken_idat_png() -> bytes:
    """A PNG whose headers read fine but whose pixel data is not zlib: fails to decode."""
    ihdr = png_chunk(b"IHDR", (64).to_bytes(4, "big") + (48).to_bytes(4, "big") + b"\x08\x02\0\0\0")
    idat = png_chunk(b"IDAT", b"not zlib at all " + uuid.uuid4().bytes * 4)
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + png_chunk(b"IEND", b"")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(folder: Path) -> list[Path]:
    """The files under `folder`, but for the lock files of open stores' staging folders."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not is_staging_lock(p))


def is_staging_lock(path: Path) -> bool:
    return path.name == LOCK_NAME and path.parent.name.startswith(STAGING_PREFIX)


def blob_path(settings: Settings, digest: str) -> Path:
    return settings.blobs_dir / digest[:2] / digest[2:4] / digest


def thumb_files(settings: Settings, digest: str) -> list[Path]:
    return [p for p in files_in(settings.thumbs_dir) if p.name.startswith(digest)]


def assert_error(code: int, body: Any, status: int, error_code: str) -> None:
    assert code == status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert body["error"]["code"] == error_code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


def assert_json_error(response: Any, status: int, error_code: str) -> None:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    assert_error(response.code, json.loads(response.body), status, error_code)


async def upload_one(api: Api, data: bytes, filename: str = "photo.jpg") -> dict[str, Any]:
    code, body = await api.upload([("file", filename, data)])
    assert code == 200, body
    assert len(body["items"]) == 1, body
    item: dict[str, Any] = body["items"][0]
    return item


async def ids_in(api: Api, path: str = f"{API}/images") -> list[str]:
    code, page = await api.json(f"{path}?limit=500")
    assert code == 200, page
    assert page["next_cursor"] is None
    return [item["id"] for item in page["items"]]


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


async def raw_exchange(
    base_url: str, head: bytes, body: bytes = b"", *, close_after_send: bool = False
) -> bytes:
    """Send bytes on a fresh socket; the response status line and headers (or b"")."""
    stream = await TCPClient().connect("127.0.0.1", port_of(base_url))
    try:
        await stream.write(head + body)
        if close_after_send:
            return b""
        return await asyncio.wait_for(stream.read_until(b"\r\n\r\n", max_bytes=65536), 10)
    finally:
        stream.close()


async def wait_until_empty(folder: Path, seconds: float = 5.0) -> list[Path]:
    """Files left in `folder` once background clean-up has had `seconds` to run."""
    for _ in range(int(seconds / 0.02)):
        if not files_in(folder):
            break
        await asyncio.sleep(0.02)
    return files_in(folder)
