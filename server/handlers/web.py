"""The web app: the folder `npm run build:web` writes (--web, web/dist by default).

`/` and every path outside the API answer the app's index.html (the app routes by the
URL's hash, and a deep link still gets the app), revalidated on every load
(`no-cache`, with an ETag) so that a new build is seen at once; the files it loads are
under `/assets/`, named by a hash of their content, and cached for a year. A path under
/api/ never reaches these handlers: an unknown one keeps its JSON 404.

Every page carries a strict Content-Security-Policy: nothing from other hosts, no
inline script or style (docs/web.md says why each source is there). A server whose
app is not built answers `/` with 503 and a short page saying how to build it: the
part of the service a browser asked for is not available, and a monitor of `/` says so.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import tornado.web
from tornado.routing import URLSpec

from .base import ErrorsMixin

INDEX_CACHE = "no-cache"
ASSETS_CACHE = "public, max-age=31536000, immutable"
# A Host header that may be put into the policy as it is: a name or an address, a port.
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

NOT_BUILT_PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>图备：网页版尚未构建</title></head>
<body>
<h1>网页版尚未构建</h1>
<p>这台图备服务器正在运行（小程序和 API 可以正常使用），但还没有构建网页版。
在服务器上安装 Node.js 20 或更新版本，然后在项目目录中运行 <code>scripts/run</code>
（或 <code>npm ci &amp;&amp; npm run build:web</code>），再刷新本页。</p>
<h1 lang="en">The web app is not built</h1>
<p lang="en">This Tubei server is running (the mini-program and the API work), but its web
app has not been built. Install Node.js 20 or newer on the server and run
<code>scripts/run</code> in the project's folder (or <code>npm ci &amp;&amp; npm run
build:web</code>), then reload this page.</p>
</body>
</html>
"""  # noqa: RUF001 (Chinese punctuation)
NOT_BUILT_POLICY = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"


def content_security_policy(host: str) -> str:
    """The app's policy; `host` (the request's Host) for its WebSocket, as ws: and wss:.

    CSP3 lets 'self' match ws:/wss: of the page's own host, but older engines (Safari
    before 15.4, some in-app browsers) do not, hence the explicit sources.
    """
    sockets = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    return "; ".join(
        [
            "default-src 'self'",
            # hash-wasm compiles WebAssembly, which needs 'wasm-unsafe-eval' (not 'unsafe-eval').
            "script-src 'self' 'wasm-unsafe-eval'",
            "style-src 'self'",
            # blob: previews of files chosen for upload; data: small images from libraries.
            "img-src 'self' blob: data:",
            "media-src 'self' blob:",
            f"connect-src 'self'{sockets}",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


@dataclass
class WebApp:
    """Where the built app is (None: --web off), and its index.html, read when it changes."""

    root: Path | None
    _index: bytes | None = None
    _stamp: tuple[int, int] | None = None

    @property
    def assets(self) -> Path | None:
        return None if self.root is None else self.root / "assets"

    def index(self) -> bytes | None:
        """index.html's bytes, or None when the app is not built."""
        if self.root is None:
            return None
        path = self.root / "index.html"
        try:
            # A stat and, after a build, one read of a file of a few hundred bytes:
            # cheaper than a trip to a thread.
            stat = os.stat(path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._index, self._stamp = path.read_bytes(), stamp
        except OSError:
            self._index = self._stamp = None
        return self._index


def security_headers(handler: tornado.web.RequestHandler, policy: str) -> None:
    handler.set_header("Content-Security-Policy", policy)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")
    handler.set_header("X-Frame-Options", "DENY")  # frame-ancestors, for older browsers


class IndexHandler(ErrorsMixin):
    """index.html for `/` and any path outside /api/ (the app's deep links)."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, web: WebApp) -> None:
        self.web = web

    async def get(self, path: str = "") -> None:
        index = self.web.index()
        if index is None:
            self.set_status(503)
            self.set_header("Cache-Control", "no-store")
            self.set_header("Content-Type", "text/html; charset=utf-8")
            security_headers(self, NOT_BUILT_POLICY)
            self.finish(NOT_BUILT_PAGE)
            return
        self.set_header("Cache-Control", INDEX_CACHE)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        security_headers(self, content_security_policy(self.request.host))
        self.finish(index)  # with an ETag of the bytes: a reload that changed nothing is a 304

    async def head(self, path: str = "") -> None:
        await self.get(path)


class AssetHandler(ErrorsMixin, tornado.web.StaticFileHandler):
    """/assets/<name>: a file of the build, its name a hash of its content."""

    def initialize(self, web: WebApp) -> None:  # type: ignore[override]
        super().initialize(path=str(web.assets or "/nonexistent"))

    def get_cache_time(self, path: str, modified: object, mime_type: str) -> int:
        return 0  # Cache-Control is set in set_extra_headers, with `immutable`

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", ASSETS_CACHE)
        # An SVG opened on its own is a document: the app's policy holds for it too.
        security_headers(self, content_security_policy(self.request.host))


# How /metrics names them: the index's one name covers every deep link.
ROUTE_NAMES = [(IndexHandler, "/ (web app)"), (AssetHandler, "/assets/{name}")]


def routes(web: WebApp) -> list[URLSpec]:
    """The app's routes, after every other route: they take what nothing else does but
    the API's paths and /metrics (404 there when it is off or on a port of its own)."""
    if web.root is None:
        return []
    args = {"web": web}
    return [
        tornado.web.url(r"/assets/(.+)", AssetHandler, args),
        tornado.web.url(r"/(?!api(?:/|$)|metrics$)(.*)", IndexHandler, args),
    ]
