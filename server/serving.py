"""The HTTP(S) server in front of the application: its limits, TLS and proxy trust.

Request headers (the request line and every header together) may be at most
`MAX_HEADER_SIZE`; the other limits are settings (see `connections.Policy`).
The open-file limit is raised to its hard limit at start-up, and the connection
caps are fitted under it.
"""

from __future__ import annotations

import logging
import resource
import ssl
from dataclasses import dataclass
from pathlib import Path

import tornado.web

from .config import Settings
from .config_values import SettingsError
from .connections import LimitedHTTPServer, Policy

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
MAX_HEADER_SIZE = 16 * 1024
# Descriptors kept for everything but client sockets: the catalog, blobs being
# written and read, thumbnails, the executors' files, logs.
RESERVED_FILES = 128


@dataclass(frozen=True)
class Capacity:
    """Connections and event sockets the open-file limit leaves room for."""

    open_files: int
    connections: int
    sockets: int


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, error)
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


def fit_capacity(settings: Settings, open_files: int) -> Capacity:
    """--max-connections and --max-sockets, shrunk in proportion if they do not fit."""
    room = max(open_files - RESERVED_FILES, 2)
    wanted = settings.max_connections + settings.max_sockets
    if wanted <= room:
        return Capacity(open_files, settings.max_connections, settings.max_sockets)
    connections = max(1, settings.max_connections * room // wanted)
    sockets = max(1, room - connections)
    log.warning(
        "the open-file limit is %d: serving at most %d connections (--max-connections %d) "
        "and %d event sockets (--max-sockets %d); raise the hard limit (ulimit -Hn) for more",
        open_files,
        connections,
        settings.max_connections,
        sockets,
        settings.max_sockets,
    )
    return Capacity(open_files, connections, sockets)


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


def policy(settings: Settings, capacity: Capacity | None = None) -> Policy:
    return Policy(
        max_connections=settings.max_connections if capacity is None else capacity.connections,
        per_address=settings.max_connections_per_address,
        max_header_size=MAX_HEADER_SIZE,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        unauthenticated_body=settings.max_unauthenticated_body,
        trust_forwarded=settings.trust_forwarded,
        forwarded_header=settings.forwarded_header,
        trusted_proxies=settings.trusted_proxies,
    )


def http_server(
    settings: Settings,
    app: tornado.web.Application,
    tls: ssl.SSLContext | None = None,
    capacity: Capacity | None = None,
) -> LimitedHTTPServer:
    return LimitedHTTPServer(
        app,
        policy=policy(settings, capacity),
        ssl_options=tls,
        chunk_size=CHUNK_SIZE,
        max_body_size=settings.max_unauthenticated_body,
    )
