"""Another real process with a store on a data folder (and maybe a thumbnail being
written), for what clean-up must spare while it lives and may take once it is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Opens a store on the data folder argv[1], stages a file, holds a temp file for the
# derived file argv[2] when given, says where they are, and waits for a line on stdin
# (or its end) before closing the store.
CHILD = """
import asyncio, contextlib, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from server.storage.held import held_temp
from server.storage.local import LocalBlobStore

async def main() -> None:
    data = Path(sys.argv[1])
    store = LocalBlobStore(data / "blobs", data / "tmp", ThreadPoolExecutor(1))
    writer = store.open_writer()
    await writer.write(b"an upload in flight")
    await writer.finish()
    with contextlib.ExitStack() as stack:
        temp = ""
        if len(sys.argv) > 2:
            Path(sys.argv[2]).parent.mkdir(parents=True, exist_ok=True)
            file = stack.enter_context(held_temp(Path(sys.argv[2])))
            file.write(b"half a thumbnail")
            file.flush()
            temp = file.name
        print(writer.staged_path, temp, sep="\\n", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await store.close()
    print("closed", flush=True)

asyncio.run(main())
"""


class Child:
    """Another process with a store on the data folder `data` and one upload staged."""

    def __init__(self, data: Path, derived: Path | None = None) -> None:
        extra = [] if derived is None else [str(derived)]
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), *extra],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        staged, temp = self.process.stdout.readline(), self.process.stdout.readline()
        assert staged.strip(), f"the child did not start (exit {self.process.wait()})"
        self.staged = Path(staged.strip())
        self.temp = Path(temp.strip()) if temp.strip() else None

    @property
    def folder(self) -> Path:
        return self.staged.parent

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait() == -signal.SIGKILL

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "closed\n"
        assert self.process.wait() == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
