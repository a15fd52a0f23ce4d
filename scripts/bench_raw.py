"""The bench's baseline: the least a Tornado server can do and still keep an upload.

`POST /upload` streams the body to a file a chunk at a time (`@stream_request_body`),
fsyncs it off the event loop (Tubei acknowledges only fsynced bytes, so the baseline
does too) and answers its size. `GET /files/<name>` serves a file with a plain
`StaticFileHandler`. The HTTPServer is the one `python -m server serve` makes
(`server.serving.http_server`: 1 MiB chunks, the same limits and timeouts). Run as a
process: `python scripts/bench_raw.py --port N --dir DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import IO

import tornado.web

from server.config import Settings
from server.serving import http_server

BODY_LIMIT = 1 << 40


@tornado.web.stream_request_body
class UploadHandler(tornado.web.RequestHandler):
    def initialize(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f"{uuid.uuid4().hex}.upload"
        self.file: IO[bytes] | None = None
        self.size = 0

    def prepare(self) -> None:
        self.request.connection.set_max_body_size(BODY_LIMIT)  # type: ignore[union-attr]
        self.file = self.path.open("xb")

    def data_received(self, chunk: bytes) -> None:
        assert self.file is not None
        self.file.write(chunk)
        self.size += len(chunk)

    def _sync(self) -> None:
        assert self.file is not None
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    async def post(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._sync)
        self.file = None
        self.finish({"size": self.size})

    def on_connection_close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.path.unlink(missing_ok=True)


class HealthHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish({"status": "ok"})


async def serve(port: int, folder: Path) -> None:
    app = tornado.web.Application(
        [
            (r"/health", HealthHandler),
            (r"/upload", UploadHandler, {"folder": folder}),
            (r"/files/(.*)", tornado.web.StaticFileHandler, {"path": str(folder)}),
        ],
        compress_response=False,
    )
    server = http_server(Settings(), app)
    server.listen(port, "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.port, args.dir))


if __name__ == "__main__":
    main()
