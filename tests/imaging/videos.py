"""Videos made with PyAV for the tests, and hostile ones made by hand.

Every frame's top half is red and its bottom half blue, so a poster's pixels say whether
it came out upright.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import av
from PIL import Image

RED = (230, 20, 20)
BLUE = (20, 20, 230)
SAMPLE_RATE = 44_100


def frame_image(width: int, height: int) -> Image.Image:
    img = Image.new("RGB", (width, height), RED)
    img.paste(BLUE, (0, height // 2, width, height))
    return img


def make_video(
    dest: Path,
    *,
    codec: str = "libx264",
    fmt: str = "mp4",
    size: tuple[int, int] = (64, 48),
    frames: int = 6,
    rate: int = 10,
    rotation: int | None = None,
    metadata: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    audio: bool = False,
) -> Path:
    """`frames` frames at `rate` a second; `audio`: with as long a silent AAC track."""
    options = {"movflags": "use_metadata_tags"} if fmt in ("mov", "mp4") and metadata else {}
    with av.open(str(dest), "w", format=fmt, options=options) as out:
        for key, value in (metadata or {}).items():
            out.metadata[key] = value
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        if codec in ("libx264", "libx265"):
            stream.options = {"preset": "ultrafast"}
            if codec == "libx265":
                stream.options["x265-params"] = "log-level=none"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio else None
        picture = frame_image(*size)
        for n in range(frames):
            frame = av.VideoFrame.from_image(picture)
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            for n in range(frames * SAMPLE_RATE // rate // 1024):
                samples = av.AudioFrame(format="fltp", layout="mono", samples=1024)
                samples.sample_rate = SAMPLE_RATE
                for plane in samples.planes:
                    plane.update(bytes(plane.buffer_size))
                samples.pts = n * 1024
                for packet in sound.encode(samples):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return dest


def video_bytes(tmp: Path, **kwargs: object) -> bytes:
    return make_video(tmp, **kwargs).read_bytes()  # type: ignore[arg-type]


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _tkhd(width: int, height: int) -> bytes:
    matrix = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    body = bytes(4) + struct.pack(">IIIII", 0, 0, 1, 0, 10) + bytes(16) + matrix
    return box(b"tkhd", body + struct.pack(">II", width << 16, height << 16))


def _mvhd(timescale: int, duration: int) -> bytes:
    return box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, timescale, duration) + bytes(80))


def _video_trak(width: int, height: int) -> bytes:
    hdlr = box(b"hdlr", bytes(8) + b"vide" + bytes(12) + b"\x00")
    entry = box(
        b"avc1", bytes(6) + b"\x00\x01" + bytes(16) + struct.pack(">HH", width, height) + bytes(50)
    )
    stsd = box(b"stsd", bytes(4) + struct.pack(">I", 1) + entry)
    mdhd = box(b"mdhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, 1000) + bytes(4))
    stbl = box(b"stbl", stsd)
    return box(b"trak", _tkhd(width, height) + box(b"mdia", mdhd + hdlr + box(b"minf", stbl)))


def bomb_mp4(*, width: int = 64, height: int = 48, duration: int = 10, tracks: int = 1) -> bytes:
    """A small MP4 whose movie header declares what it is told to."""
    ftyp = box(b"ftyp", b"isom" + bytes(4) + b"isomiso2avc1mp41")
    moov = box(b"moov", _mvhd(1, duration) + _video_trak(width, height) * tracks)
    return ftyp + moov + box(b"mdat", bytes(64))


def patch_dimensions(data: bytes, width: int, height: int) -> bytes:
    """A real MP4 whose tkhd and first stsd entry declare width x height."""
    out = bytearray(data)
    at = out.index(b"tkhd")
    version = out[at + 4]
    offset = at + 4 + 4 + (32 if version == 1 else 20) + 16 + 36
    struct.pack_into(">II", out, offset, width << 16, height << 16)
    at = out.index(b"avc1", out.index(b"stsd"))
    struct.pack_into(">HH", out, at + 4 + 24, width, height)
    return bytes(out)


def jpeg_bytes(size: tuple[int, int] = (64, 48), xmp: bytes | None = None) -> bytes:
    out = io.BytesIO()
    params: dict[str, object] = {"xmp": xmp} if xmp is not None else {}
    frame_image(*size).save(out, "JPEG", **params)
    return out.getvalue()
