"""`scripts/bench --profile`: py-spy on a server while a measurement runs, and a summary."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


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
