"""A video's metadata from its container headers, by PyAV, under caps.

Blocking: FFmpeg's `avformat_find_stream_info` (which PyAV always runs on open) reads
up to `probesize` bytes and would decode frames to learn a stream's pixel format; here
its decoders are told to discard every frame (`skip_frame=all`), so only the demuxer
and the bitstream parsers run. It is still FFmpeg on hostile bytes, so it runs in a
decoding worker (the `probe` job in worker.py), under its address-space cap and CPU
timeout, never on the request path. An MP4/MOV/3GP is walked first (bmff.py): a header
that declares more than any camera writes is refused before FFmpeg sees it. The file is
never read through: the demuxer seeks to the movie header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container

from . import bmff
from .formats import SNIFF_BYTES, Kind, sniff_video

# What FFmpeg may read and decode while it learns the streams' parameters.
PROBE_OPTIONS = {"probesize": str(1024 * 1024), "analyzeduration": str(500_000)}
# For metadata alone: less read, and the decoders told to discard every frame, so the
# probe runs the bitstream parsers only (no pixel format is learnt; none is needed).
METADATA_OPTIONS = {"probesize": str(256 * 1024), "analyzeduration": str(500_000)}
_DISCARD_FRAMES = {"skip_frame": "all"}
MAX_STREAMS = bmff.MAX_TRACKS
MAX_SIDE = bmff.MAX_SIDE
MAX_DURATION = bmff.MAX_DURATION

_APPLE_LOCATION = "com.apple.quicktime.location.ISO6709"
_APPLE_CREATED = "com.apple.quicktime.creationdate"
APPLE_CONTENT_ID = "com.apple.quicktime.content.identifier"
_ISO6709 = re.compile(r"[+-]\d{1,3}(?:\.\d+)?[+-]\d{1,3}(?:\.\d+)?")


class NotAVideo(Exception):
    """Sniffed as a video container, but it holds no video at all: not media."""


@dataclass(frozen=True)
class VideoMetadata:
    format: str
    mime: str
    width: int | None  # as displayed: the rotation applied
    height: int | None
    duration: float | None  # seconds
    taken_at: str | None  # ISO 8601, with its offset when the file says it
    codec: str | None  # FFmpeg's name: h264, hevc, vp9, av1...
    frame_rate: float | None
    rotation: int  # degrees counter-clockwise the frames are turned for display
    has_gps: bool
    content_identifier: str | None  # Apple's Live Photo pairing key
    decodable: bool  # a poster may be made: complete, within the caps
    reason: str | None = None  # why not, when not


def open_video(path: Path, *, decode: bool = True) -> av.container.InputContainer:
    """Open for decoding (the streams' pixel formats probed), or for metadata alone."""
    if decode:
        return av.open(str(path), container_options=PROBE_OPTIONS, metadata_errors="replace")
    return av.open(
        str(path),
        container_options=METADATA_OPTIONS,
        options=_DISCARD_FRAMES,
        metadata_errors="replace",
    )


def read_video_metadata(path: Path, kind: Kind | None = None) -> VideoMetadata:
    """Read a video's facts from its headers. Raises NotAVideo when it holds no video
    (or is no container at all), OSError when `path` cannot be opened."""
    with path.open("rb") as f:
        if kind is None:
            kind = sniff_video(f.read(SNIFF_BYTES))
            if kind is None:
                raise NotAVideo("not an accepted video format")
        movie = None
        if kind.format in ("MP4", "MOV", "3GP"):
            try:
                movie = bmff.walk(f)
            except bmff.TooComplex as error:
                return _undecodable(kind, str(error))
            except bmff.NotAVideo as error:
                raise NotAVideo(str(error)) from None
            if not movie.moov and not movie.mdat:
                raise NotAVideo("no movie header and no media data")
    try:
        container = open_video(path, decode=False)
    except av.error.FFmpegError as error:
        # A video cut before its movie header: kept, nothing more can be said.
        return _from_walk(kind, movie, f"cannot be demuxed: {error}")
    with container:
        return _read(container, kind, movie)


def decodable_video(path: Path) -> VideoMetadata | str:
    """The metadata of a video whose frames can be decoded, else why not (for what is
    made from its frames: posters, previews)."""
    try:
        facts = read_video_metadata(path)
    except NotAVideo as error:
        return f"not a video: {error}"
    if not facts.decodable:
        return facts.reason or "cannot be decoded"
    return facts


def _read(container: Any, kind: Kind, movie: bmff.Movie | None) -> VideoMetadata:
    if len(container.streams) > MAX_STREAMS:
        return _undecodable(kind, f"{len(container.streams)} streams")
    if not container.streams.video:
        if movie is not None and movie.truncated:
            return _from_walk(kind, movie, "cut short")
        raise NotAVideo("no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    duration = _duration(container, stream)
    reason = None
    if max(width, height) > MAX_SIDE:
        reason = f"a declared frame of {width}x{height}"
    elif duration is not None and duration > MAX_DURATION:
        reason = f"a declared duration of {duration:.0f} s"
    elif movie is not None and movie.truncated:
        reason = "cut short"
    elif not width or not height:
        reason = "no frame size"
    track = movie.video if movie is not None else None
    rotation = track.rotation if track is not None else 0
    if rotation in (90, 270):
        width, height = height, width
    tags = {**stream.metadata, **container.metadata}
    rate = stream.average_rate or stream.guessed_rate
    return VideoMetadata(
        format=kind.format,
        mime=kind.mime,
        width=width or None,
        height=height or None,
        duration=duration,
        taken_at=_taken_at(tags, movie),
        codec=stream.codec_context.name,
        frame_rate=round(float(rate), 3) if isinstance(rate, Fraction) and rate > 0 else None,
        rotation=rotation,
        has_gps=_has_gps(tags),
        content_identifier=_text(tags.get(APPLE_CONTENT_ID)),
        decodable=reason is None,
        reason=reason,
    )


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration / av.time_base)
    return None


def _taken_at(tags: dict[str, str], movie: bmff.Movie | None) -> str | None:
    """Apple's local creation date (it carries the offset), else the container's UTC
    `creation_time`, else the movie header's."""
    for key in (_APPLE_CREATED, "creation_time", "date"):
        parsed = _iso(tags.get(key))
        if parsed is not None:
            return parsed
    if movie is not None and movie.created and movie.created > 0:
        return (
            datetime.fromtimestamp(movie.created, UTC).replace(tzinfo=None).isoformat() + "+00:00"
        )
    return None


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.year < 1971:  # a zeroed mvhd, read by FFmpeg as 1904 or 1970
        return None
    naive = moment.replace(tzinfo=None, microsecond=0).isoformat()
    offset = moment.utcoffset()
    if offset is None:
        return naive
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{naive}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _has_gps(tags: dict[str, str]) -> bool:
    for key, value in tags.items():
        is_location = key == _APPLE_LOCATION or key.startswith("location")
        if is_location and value and _ISO6709.match(value.strip()):
            return True
    return False


def _text(value: str | None) -> str | None:
    value = value.strip() if value else None
    return value[:256] if value else None


def _from_walk(kind: Kind, movie: bmff.Movie | None, reason: str) -> VideoMetadata:
    track = movie.video if movie is not None else None
    width = height = None
    if track is not None and track.width and track.height:
        width, height = round(track.width), round(track.height)
        if track.rotation in (90, 270):
            width, height = height, width
    return VideoMetadata(
        format=kind.format,
        mime=kind.mime,
        width=width,
        height=height,
        duration=movie.duration if movie is not None else None,
        taken_at=_taken_at({}, movie),
        codec=None,
        frame_rate=None,
        rotation=track.rotation if track is not None else 0,
        has_gps=False,
        content_identifier=None,
        decodable=False,
        reason=reason,
    )


def _undecodable(kind: Kind, reason: str) -> VideoMetadata:
    return _from_walk(kind, None, reason)
