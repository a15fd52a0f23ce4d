"""A video's playable preview: H.264 and AAC in an MP4, at most 720p, upright.

For the videos a phone may not play (HEVC on many Android phones and in WeChat's
player, VP9 and AV1 in WebM, anything that is not H.264). Blocking and CPU-bound: runs
in a decoding worker (the `preview` job in worker.py) under its address-space cap and a
CPU timeout that grows with the video's length, on idle CPU priority. Decoder and
encoder each run on one thread; the decoder's frames are estimated from the header
(budget.video_frame) before it is opened.

Frames are scaled to fit 1280x720 (720x1280 upright), turned by the rotation the
source declares (so no player has to honour a display matrix), and taken at most 30
a second. The first audio stream, if any, becomes AAC (stereo at most, 48 kHz or the
source's 44.1 kHz). The movie header goes first (`faststart`), so it plays while it
downloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container

from ..storage.held import held_temp
from .budget import video_frame
from .video import decodable_video, open_video

BOX = (1280, 720)  # the largest preview, landscape (portrait: turned)
MAX_RATE = 30  # frames a second kept at most
# What gets a preview at all: phones record 4K (3840x2160, DCI 4096x2160) for minutes;
# beyond that a transcode on a small box would take hours of its idle CPU.
MAX_SOURCE_PIXELS = 4096 * 2304
MAX_SOURCE_SECONDS = 20 * 60.0
VIDEO_OPTIONS = {
    "preset": "veryfast",
    "crf": "24",
    "profile": "main",  # every phone's hardware decoder plays Main
    "x264-params": "rc-lookahead=10:keyint=60:min-keyint=15",
}
AUDIO_RATE = 48_000
AUDIO_BITRATE = 128_000
# Packets that fail to decode before the source counts as undecodable.
MAX_BAD_PACKETS = 50
PROGRESS_STEP = 0.02  # report progress at least this far apart (a fraction of the whole)
_TIME_BASE = Fraction(1, 90_000)
_TRANSPOSE = {90: ("transpose", "cclock"), 270: ("transpose", "clock")}

Progress = Callable[[float], None]


@dataclass(frozen=True)
class PreviewFacts:
    width: int
    height: int
    audio: bool


def preview_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """The encoded frame's size (before turning): the source's, fitted in the box
    (its sides swapped for a frame shown turned a quarter), even, never enlarged."""
    turned = rotation % 180 == 90
    shown_w, shown_h = (height, width) if turned else (width, height)
    box_w, box_h = BOX if shown_w >= shown_h else BOX[::-1]
    scale = min(1.0, box_w / shown_w, box_h / shown_h)
    out_w = max(2, int(shown_w * scale) // 2 * 2)
    out_h = max(2, int(shown_h * scale) // 2 * 2)
    return (out_h, out_w) if turned else (out_w, out_h)


def make_preview(
    source: Path, dest: Path, budget: int, progress: Progress | None = None
) -> PreviewFacts | str:
    """Write `dest` (atomically: a held temp file renamed into place); its facts, or
    why no preview can be made. Raises OSError when `source` cannot be opened or
    `dest` cannot be written."""
    facts = decodable_video(source)
    if isinstance(facts, str):
        return facts
    if facts.duration is not None and facts.duration > MAX_SOURCE_SECONDS:
        return f"{facts.duration:.0f} s is longer than a preview is made for"
    try:
        with open_video(source) as container:
            stream = container.streams.video[0]
            context = stream.codec_context
            width, height = context.width, context.height
            if width * height > MAX_SOURCE_PIXELS:
                return f"{width}x{height} is larger than a preview is made from"
            fmt = context.pix_fmt
            bits = av.VideoFormat(fmt).padded_bits_per_pixel if fmt else None
            needed = video_frame(width, height, bits)
            if needed.bytes > budget:
                return f"decoding needs {needed.bytes} bytes ({needed.detail}), over the budget"
            dest.parent.mkdir(parents=True, exist_ok=True)
            with held_temp(dest) as temp:
                made = _transcode(container, temp.name, facts.rotation, facts.duration, progress)
                if isinstance(made, str):
                    raise _NoPreview(made)
                return made
    except _NoPreview as why:
        return str(why)
    except av.error.FFmpegError as error:
        return f"cannot be transcoded: {error}"


class _NoPreview(Exception):
    """Raised inside the temp file's block, so that it is removed, not renamed in."""


def _transcode(
    container: av.container.InputContainer,
    out_path: str,
    declared_rotation: int,
    duration: float | None,
    progress: Progress | None,
) -> PreviewFacts | str:
    source = container.streams.video[0]
    source.codec_context.thread_count = 1
    source.thread_type = "SLICE"
    audio_in = container.streams.audio[0] if container.streams.audio else None
    with av.open(out_path, "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = _Video(out, source, declared_rotation)
        audio = _Audio(out, audio_in) if audio_in is not None else None
        reporter = _Reporter(progress, duration)
        streams = [source] if audio_in is None else [source, audio_in]
        bad = 0
        for packet in container.demux(streams):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    return f"more than {MAX_BAD_PACKETS} packets cannot be decoded"
                continue
            for frame in frames:
                if isinstance(frame, av.VideoFrame):
                    video.add(frame)
                    reporter.at(frame.time)
                elif audio is not None and isinstance(frame, av.AudioFrame):
                    audio.add(frame)
        video.finish()
        if audio is not None:
            audio.finish()
        if not video.frames:
            return "no frame could be decoded"
        return PreviewFacts(video.width, video.height, audio is not None and audio.frames > 0)


class _Video:
    def __init__(self, out: Any, source: Any, declared_rotation: int) -> None:
        self._out = out
        self._source = source
        self._declared = declared_rotation
        self._stream: Any = None
        self._graph: av.filter.Graph | None = None
        self._size = (0, 0)
        self._next = float("-inf")  # the earliest time the next kept frame may show
        self.frames = 0
        self.width = self.height = 0

    def _open(self, frame: av.VideoFrame) -> None:
        rotation = (frame.rotation or self._declared) % 360
        self._size = preview_size(frame.width, frame.height, rotation)
        turned = rotation % 180 == 90
        self.width, self.height = self._size[::-1] if turned else self._size
        stream = self._out.add_stream("libx264", rate=MAX_RATE, options=dict(VIDEO_OPTIONS))
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = _TIME_BASE
        stream.codec_context.time_base = _TIME_BASE
        stream.codec_context.thread_count = 1
        self._stream = stream
        filters = [_TRANSPOSE[rotation]] if rotation in _TRANSPOSE else []
        if rotation == 180:
            filters = [("hflip", ""), ("vflip", "")]
        if filters:
            graph = av.filter.Graph()
            width, height = self._size
            nodes = [
                graph.add_buffer(
                    width=width,
                    height=height,
                    format=av.VideoFormat("yuv420p"),
                    time_base=_TIME_BASE,
                )
            ]
            nodes += [graph.add(name, args or None) for name, args in filters]
            nodes.append(graph.add("buffersink"))
            graph.link_nodes(*nodes).configure()
            self._graph = graph

    def add(self, frame: av.VideoFrame) -> None:
        time = frame.time
        if self._stream is None:
            self._open(frame)
        if time is not None:
            if time < self._next:
                return  # over 30 a second: this one is dropped
            # A quarter of a frame's leeway: a 30 fps source's jittered times all pass.
            self._next = time + 0.75 / MAX_RATE
        width, height = self._size
        scaled = frame.reformat(width=width, height=height, format="yuv420p")
        pts = round(time / _TIME_BASE) if time is not None else None
        scaled.pts = pts
        scaled.time_base = _TIME_BASE
        for ready in self._turned(scaled):
            self._encode(ready)

    def _turned(self, frame: av.VideoFrame) -> Iterator[av.VideoFrame]:
        if self._graph is None:
            yield frame
            return
        self._graph.push(frame)
        while True:
            try:
                pulled = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            assert isinstance(pulled, av.VideoFrame)
            yield pulled

    def _encode(self, frame: av.VideoFrame | None) -> None:
        if frame is not None:
            frame.pict_type = av.video.frame.PictureType.NONE
            self.frames += 1
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def finish(self) -> None:
        if self._stream is not None:
            self._encode(None)


class _Audio:
    def __init__(self, out: Any, source: Any) -> None:
        self._out = out
        source.codec_context.thread_count = 1
        channels = min(2, source.codec_context.channels or 1)
        rate = 44_100 if source.codec_context.sample_rate == 44_100 else AUDIO_RATE
        layout = "stereo" if channels == 2 else "mono"
        self._stream = out.add_stream("aac", rate=rate, layout=layout)
        self._stream.bit_rate = AUDIO_BITRATE
        self._resampler = av.AudioResampler(
            format="fltp", layout=layout, rate=rate, frame_size=1024
        )
        self.frames = 0

    def add(self, frame: av.AudioFrame | None) -> None:
        for resampled in self._resampler.resample(frame):
            self.frames += 1
            for packet in self._stream.encode(resampled):
                self._out.mux(packet)

    def finish(self) -> None:
        self.add(None)
        for packet in self._stream.encode(None):
            self._out.mux(packet)


class _Reporter:
    def __init__(self, progress: Progress | None, duration: float | None) -> None:
        self._progress = progress
        self._duration = duration
        self._last = 0.0

    def at(self, time: float | None) -> None:
        if self._progress is None or not self._duration or time is None:
            return
        done = min(max(time / self._duration, 0.0), 1.0)
        if done - self._last >= PROGRESS_STEP:
            self._last = done
            self._progress(done)
