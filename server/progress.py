"""Progress of a long command on stderr: a bar redrawn in place on a terminal, plain
lines (one every tenth of the way) when stderr is a file or a pipe."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 30
REDRAW_EVERY = 0.1  # seconds, on a terminal


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


class ProgressDisplay:
    def __init__(self, out: TextIO, label: str, *, tty: bool | None = None) -> None:
        self._out = out
        self._label = label
        self._tty = out.isatty() if tty is None else tty
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._tenths = -1
        self._width = 0

    def update(self, done: int, total: int, items_done: int, items_total: int) -> None:
        """`done` of `total` bytes, `items_done` of `items_total` items."""
        fraction = min(done / total, 1.0) if total > 0 else 1.0
        if self._tty:
            now = time.monotonic()
            if now - self._drawn_at < REDRAW_EVERY and done < total:
                return
            self._drawn_at = now
            self._draw(self._bar(fraction, done, total, items_done, items_total, now))
            return
        finished = done >= total and items_done >= items_total
        tenths = 10 if finished else min(int(fraction * 10), 9)
        if tenths > self._tenths:
            self._tenths = tenths
            print(
                f"{self._label}: {tenths * 10}% ({items_done} of {items_total}, "
                f"{human_bytes(done)} of {human_bytes(total)})",
                file=self._out,
                flush=True,
            )

    def close(self) -> None:
        """End the bar's line, so that what follows starts on its own."""
        if self._tty and self._width:
            print(file=self._out, flush=True)
            self._width = 0

    def _bar(
        self, fraction: float, done: int, total: int, items_done: int, items_total: int, now: float
    ) -> str:
        filled = int(fraction * BAR_WIDTH)
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f", {(total - done) / rate:.0f} s left" if rate > 0 and done < total else ""
        return (
            f"{self._label} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:4.0%} "
            f"{items_done}/{items_total}  {human_bytes(done)}/{human_bytes(total)}  "
            f"{human_bytes(rate)}/s{left}"
        )

    def _draw(self, line: str) -> None:
        padding = " " * max(0, self._width - len(line))
        self._out.write(f"\r{line}{padding}")
        self._out.flush()
        self._width = len(line)
