"""A capped walk of an MP4/MOV/3GP file's boxes, before any demuxer sees it.

FFmpeg's demuxer allocates what a header declares (a stream per track, tables per
sample) and probes frames to fill in what it does not; a small hostile file that
declares thousands of tracks, 60000 x 60000 frames or a duration of years is refused
here, from the lengths and a few fixed-size boxes, by seeking: nothing is read past a
box header but `mvhd`, `tkhd`, `mdhd`, `hdlr` and the first `stsd` entry, each capped.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

# Phones write 2 to 4 tracks (video, audio, timed metadata) and a few hundred boxes in
# their movie header. A fragmented MP4 has a `moof` and an `mdat` at the top for every
# fragment (a second or two each): a day of them stays under the top-level cap.
MAX_BOXES = 4096
MAX_TOP_LEVEL_BOXES = 200_000
MAX_TRACKS = 16
MAX_DEPTH = 12
# 8K is 7680 x 4320; an 8K panorama a little more. Declared sides past this are refused.
MAX_SIDE = 16384
MAX_DURATION = 24 * 3600.0  # seconds
_LEAF_BYTES = 4096  # what is read of one parsed box
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta"})
_PARSED = frozenset({b"mvhd", b"tkhd", b"mdhd", b"hdlr", b"stsd"})
_EPOCH_1904 = 2082844800  # seconds from 1904-01-01 to 1970-01-01


class TooComplex(Exception):
    """The header declares more than any camera writes: the file is not demuxed."""


class NotAVideo(Exception):
    """The bytes start like a video container but hold no video track."""


@dataclass
class Track:
    handler: bytes = b""
    width: float = 0.0  # tkhd: the displayed size before the matrix, 16.16 fixed point
    height: float = 0.0
    rotation: int = 0  # degrees counter-clockwise, as FFmpeg's display matrix says
    coded: tuple[int, int] | None = None  # the first stsd entry's frame size
    codec: str | None = None  # the first stsd entry's four-character code
    duration: float | None = None  # mdhd, seconds


@dataclass
class Movie:
    duration: float | None = None  # mvhd, seconds
    created: int | None = None  # mvhd, Unix seconds (UTC)
    tracks: list[Track] = field(default_factory=list)
    moov: bool = False
    mdat: bool = False
    truncated: bool = False  # a box runs past the end of the file: it was cut short
    boxes: int = 0  # inside the top-level boxes
    top_level: int = 0

    @property
    def video(self) -> Track | None:
        return next((t for t in self.tracks if t.handler == b"vide"), None)


def walk(f: BinaryIO) -> Movie:
    """The movie's tracks and durations. Raises TooComplex over a cap, NotAVideo when the
    header (once complete) has no video track; a file cut short keeps what was read."""
    size = os.fstat(f.fileno()).st_size
    movie = Movie()
    _walk(f, 0, size, 0, movie, None)
    if movie.moov and movie.video is None and not movie.truncated:
        raise NotAVideo("no video track")
    return movie


def _walk(f: BinaryIO, start: int, end: int, depth: int, movie: Movie, track: Track | None) -> None:
    if depth > MAX_DEPTH:
        raise TooComplex(f"boxes nested deeper than {MAX_DEPTH}")
    at = start
    while at + 8 <= end:
        if depth == 0:
            movie.top_level += 1
            if movie.top_level > MAX_TOP_LEVEL_BOXES:
                raise TooComplex(f"more than {MAX_TOP_LEVEL_BOXES} top-level boxes")
        else:
            movie.boxes += 1
            if movie.boxes > MAX_BOXES:
                raise TooComplex(f"more than {MAX_BOXES} boxes in the movie header")
        f.seek(at)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:
            if len(head) < 16:
                return
            size = struct.unpack(">Q", head[8:16])[0]
            header = 16
        elif size == 0:
            size = end - at
        if size < header:
            return  # a damaged box: what was read so far stands
        body, stop = at + header, min(at + size, end)
        if at + size > end:
            movie.truncated = True
        if kind == b"mdat":
            movie.mdat = True
        if kind in _CONTAINERS:
            child = track
            if kind == b"moov":
                movie.moov = True
            elif kind == b"trak":
                if len(movie.tracks) >= MAX_TRACKS:
                    raise TooComplex(f"more than {MAX_TRACKS} tracks")
                child = Track()
                movie.tracks.append(child)
            _walk(f, body, stop, depth + 1, movie, child)
        elif kind in _PARSED:
            f.seek(body)
            _parse(kind, f.read(min(stop - body, _LEAF_BYTES)), movie, track)
        at += size


def _parse(kind: bytes, data: bytes, movie: Movie, track: Track | None) -> None:
    try:
        if kind == b"mvhd":
            created, timescale, duration = _times(data)
            movie.created = created - _EPOCH_1904 if created else None
            movie.duration = _seconds(duration, timescale)
        elif track is None:
            return
        elif kind == b"tkhd":
            _tkhd(data, track)
        elif kind == b"mdhd":
            _, timescale, duration = _times(data)
            track.duration = _seconds(duration, timescale)
        elif kind == b"hdlr" and not track.handler:
            # The media's handler; a QuickTime `minf` has a data handler (`alis`) after it.
            track.handler = data[8:12]
        elif kind == b"stsd":
            _stsd(data, track)
    except struct.error:
        return  # cut short inside the box: its facts are unknown


def _times(data: bytes) -> tuple[int, int, int]:
    """(creation time, timescale, duration) of an mvhd or mdhd, version 0 or 1."""
    if data[0] == 1:
        created, _, timescale, duration = struct.unpack_from(">QQIQ", data, 4)
    else:
        created, _, timescale, duration = struct.unpack_from(">IIII", data, 4)
    return created, timescale, duration


def _seconds(duration: int, timescale: int) -> float | None:
    if timescale == 0 or duration in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        return None
    seconds = duration / timescale
    if seconds > MAX_DURATION:
        raise TooComplex(f"a declared duration of {seconds:.0f} s")
    return seconds


def _tkhd(data: bytes, track: Track) -> None:
    offset = 4 + (32 if data[0] == 1 else 20) + 16  # times and ids; reserved, layer...
    a, b = struct.unpack_from(">ii", data, offset)
    width, height = struct.unpack_from(">II", data, offset + 36)
    track.width, track.height = width / 65536, height / 65536
    if max(track.width, track.height) > MAX_SIDE:
        raise TooComplex(f"a declared frame of {track.width:.0f}x{track.height:.0f}")
    if a or b:
        track.rotation = round(-math.degrees(math.atan2(b, a))) % 360


def _stsd(data: bytes, track: Track) -> None:
    count = struct.unpack_from(">I", data, 4)[0]
    if count > MAX_TRACKS:
        raise TooComplex(f"{count} sample descriptions")
    if count == 0 or len(data) < 16:
        return
    track.codec = data[12:16].decode("latin-1")
    if track.handler == b"vide" and len(data) >= 8 + 8 + 24 + 4:
        # A visual sample entry: 6 reserved, data reference, 16 pre-defined, then the size.
        width, height = struct.unpack_from(">HH", data, 8 + 8 + 24)
        if max(width, height) > MAX_SIDE:
            raise TooComplex(f"a declared frame of {width}x{height}")
        track.coded = (width, height)
