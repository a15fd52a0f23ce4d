"""The HTTP(S) server in front of the application: its limits, TLS and proxy trust.

Limits on what a client may send before a handler sees it: request headers (the
request line and every header together) at most `MAX_HEADER_SIZE`; bodies at
most `MAX_BODY_SIZE` unless a streaming handler raises its own limit for an
upload; headers must arrive within `IDLE_TIMEOUT` and a body within
`BODY_TIMEOUT`. Forwarded-for headers are believed only with `trust_forwarded`.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import tornado.httpserver
import tornado.web

from .config import Settings, SettingsError

CHUNK_SIZE = 1024 * 1024
MAX_BODY_SIZE = 1024 * 1024
MAX_HEADER_SIZE = 16 * 1024
IDLE_TIMEOUT = 120.0
BODY_TIMEOUT = 600.0


def _readable(flag: str, path: Path) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise SettingsError(f"{flag} {path}: cannot read it ({error.strerror})") from None


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context from --certfile and --keyfile, or None for plain HTTP."""
    if settings.certfile is None or settings.keyfile is None:
        return None
    _readable("--certfile", settings.certfile)
    _readable("--keyfile", settings.keyfile)
    keyfile = settings.keyfile

    def encrypted() -> str:
        # Asked only for an encrypted key: refuse, rather than prompt on a terminal.
        raise SettingsError(
            f"--keyfile {keyfile}: the key is encrypted; give the server an unencrypted key "
            "that only its user can read"
        )

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.certfile, keyfile, password=encrypted)
    except (ssl.SSLError, OSError) as error:
        reason = getattr(error, "reason", None) or error.strerror or type(error).__name__
        raise SettingsError(
            f"--certfile {settings.certfile} and --keyfile {keyfile}: not a PEM certificate "
            f"chain and its matching private key ({reason})"
        ) from None
    return context


def http_server(
    settings: Settings, app: tornado.web.Application, tls: ssl.SSLContext | None = None
) -> tornado.httpserver.HTTPServer:
    return tornado.httpserver.HTTPServer(
        app,
        ssl_options=tls,
        xheaders=settings.trust_forwarded,
        chunk_size=CHUNK_SIZE,
        max_header_size=MAX_HEADER_SIZE,
        max_body_size=MAX_BODY_SIZE,
        idle_connection_timeout=IDLE_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
    )
