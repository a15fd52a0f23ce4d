"""Poster thumbnails of a video: one frame about a second in, upright, every size.

Blocking and CPU-bound: runs in a decoding worker (the `poster` job in worker.py). The
frame's memory is estimated from the header (budget.video_frame) before the decoder is
opened, and the decoder runs on one thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import av
from PIL import Image

from .budget import video_frame
from .derived import Limits, _save_atomically, _shrink
from .video import decodable_video, open_video

POSTER_AT = 1.0  # seconds in; shorter videos show their first frame
# Frames decoded from the keyframe before POSTER_AT before giving up on reaching it
# (phones put a keyframe every second or two: 120 frames at 60 fps).
MAX_FRAMES = 300
_ROTATE = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def render_poster(source: Path, outputs: Mapping[int, Path], limits: Limits) -> str | None:
    """Write an upright, metadata-free JPEG poster of `source` for each size (a box, px).

    None when every output was written, else why none could be. Raises OSError when
    `source` cannot be opened or an output cannot be written.
    """
    if not outputs or min(outputs) < 1:
        raise ValueError(f"poster sizes must be positive, not {sorted(outputs)}")
    facts = decodable_video(source)
    if isinstance(facts, str):
        return facts
    try:
        with open_video(source) as container:
            made = _frame(container, limits, facts.duration)
    except av.error.FFmpegError as error:
        return f"cannot be decoded: {error}"
    if isinstance(made, str):
        return made
    image, rotation = made
    rotation = rotation or facts.rotation
    method = _ROTATE.get(rotation % 360)
    current = image
    shrunk = []
    for size in sorted(outputs, reverse=True):
        current = _shrink(current, size)
        shrunk.append((size, current))
    for size, thumb in shrunk:
        thumb = thumb.transpose(method) if method is not None else thumb
        _save_atomically(thumb.convert("RGB"), outputs[size])
    return None


def _frame(container: Any, limits: Limits, duration: float | None) -> tuple[Image.Image, int] | str:
    """The poster's frame as an RGB image and its rotation, or why it cannot be had."""
    stream = container.streams.video[0]
    context = stream.codec_context
    width, height = context.width, context.height
    if width * height > limits.max_pixels:
        return f"{width}x{height} is over the pixel limit"
    bits = av.VideoFormat(context.pix_fmt).padded_bits_per_pixel if context.pix_fmt else None
    needed = video_frame(width, height, bits)
    if needed.bytes > limits.budget:
        return f"decoding needs {needed.bytes} bytes ({needed.detail}), over the budget"
    context.thread_count = 1
    stream.thread_type = "SLICE"
    target = POSTER_AT if duration is not None and duration > POSTER_AT else 0.0
    if target and stream.time_base:
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError:
            container.seek(0)
    chosen = None
    half_frame = 0.5 / float(stream.guessed_rate or 30)
    for decoded, frame in enumerate(container.decode(stream), 1):
        chosen = frame
        if frame.time is None or frame.time >= target - half_frame or decoded >= MAX_FRAMES:
            break
    if chosen is None:
        return "no frame could be decoded"
    return chosen.to_image(), chosen.rotation % 360
