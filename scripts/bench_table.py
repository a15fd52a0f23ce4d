"""The bench's rows and its table, and the small helpers every measure uses.

A measure returns `Row`s: its figure, the baseline measured in the same run, and the
target the ratio (or the figure itself) must meet. `table()` prints them as the
markdown table README.md shows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench_servers import ServerProcess


@dataclass(frozen=True)
class Target:
    """What a row must reach: its ratio to the baseline, or its value itself."""

    on: str  # "ratio", "value" or "" (a figure to read, with no target)
    op: str  # ">=", "<=", "<", "=="
    limit: float
    text: str

    def met(self, value: float, ratio: float | None) -> bool | None:
        if not self.on:
            return None
        x = ratio if self.on == "ratio" else value
        if x is None:
            return False
        return {
            ">=": x >= self.limit,
            "<=": x <= self.limit,
            "<": x < self.limit,
            "==": x == self.limit,
        }[self.op]


def at_least(ratio: float) -> Target:
    return Target("ratio", ">=", ratio, f"≥ {ratio:.2f}x")


def at_most(ratio: float) -> Target:
    return Target("ratio", "<=", ratio, f"≤ {ratio:.2f}x")


INFO = Target("", "", 0, "—")


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target = INFO
    detail: str = ""
    paired_ratio: float | None = None  # the median of run-by-run ratios, where measured so

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.baseline is None or self.baseline == 0 or self.target.on == "value":
            return None
        return self.value / self.baseline

    @property
    def result(self) -> str:
        met = self.target.met(self.value, self.ratio)
        return "info" if met is None else ("PASS" if met else "MISS")


def figure(value: float, unit: str) -> str:
    if unit in ("MB/s", "photos/s", "uploads/s"):
        return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    if unit in ("ms", "MiB"):
        return f"{value:.1f} {unit}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.0f}{(' ' + unit) if unit else ''}"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| measure | Tubei | baseline | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        baseline = "—"
        if row.baseline is not None:
            baseline = f"{figure(row.baseline, row.unit)} {row.baseline_name}".strip()
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x"
        name = f"{row.name} ({row.detail})" if row.detail else row.name
        lines.append(
            f"| {name} | {figure(row.value, row.unit)} | {baseline} | {ratio} "
            f"| {row.target.text} | {row.result} |"
        )
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rotated(items: Sequence[str], n: int) -> list[str]:
    n %= len(items)
    return [*items[n:], *items[:n]]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Run(Protocol):
    """What a measure is given (`bench_run.Bench`): where to work, how long, its inputs."""

    workdir: Path
    scale: Any  # bench_run.Scale
    notes: list[str]

    def say(self, text: str) -> None: ...

    def profiling(self, server: ServerProcess, name: str) -> AbstractContextManager[None]: ...

    def camera_jpeg(self) -> Path: ...

    def random_file(self, mib: int) -> Path: ...
