"""One typed Settings object: command line > environment (TUBEI_*) > defaults.

Every setting is declared once, with its default, its help text and the group of
commands that take it. A malformed value is an error at start-up that names the
setting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_places import Places
from .config_values import (
    EVENTS_LOCAL,
    WEB_DIST,
    parse_base_url,
    parse_blobs,
    parse_bool,
    parse_catalog,
    parse_days,
    parse_events,
    parse_header_name,
    parse_log_level,
    parse_media_url_ttl,
    parse_networks,
    parse_optional_path,
    parse_origins,
    parse_port,
    parse_positive,
    parse_seconds,
    parse_seconds_or_zero,
    parse_size,
    parse_web,
)
from .storage.s3_config import S3Location


def setting(
    default: Any,
    help: str,
    *,
    group: str = "serve",
    parse: Callable[[str], Any] = str,
    metavar: str | None = None,
    secret: bool = False,
) -> Any:
    # A secret stays out of repr(), so that logging a Settings object cannot leak it.
    return field(
        default=default,
        repr=not secret,
        metadata={"help": help, "group": group, "parse": parse, "metavar": metavar},
    )


@dataclass(frozen=True)
class Settings(Places):
    data: Path = setting(
        Path("./data"),
        "folder for photos, thumbnails and the catalog",
        group="common",
        parse=Path,
        metavar="DIR",
    )
    log_level: str = setting(
        "info", "debug, info, warning or error", group="common", parse=parse_log_level
    )
    host: str = setting("0.0.0.0", "address to listen on")
    port: int = setting(8000, "TCP port to listen on", parse=parse_port)
    public_url: str = setting(
        "",
        "address phones use to reach the server, put in pairing QR codes "
        "(default: guessed from this machine's LAN address)",
        metavar="URL",
    )
    max_upload_size: int = setting(
        4 * 1024**3,
        "largest request body accepted by an upload",
        parse=parse_size,
        metavar="SIZE",
    )
    max_pixels: int = setting(
        250_000_000,
        "images with more pixels are kept but never decoded (no thumbnail)",
        parse=parse_positive,
        metavar="N",
    )
    decode_budget: int = setting(
        384 * 1024**2,
        "memory one decode may take, judged from the image's header before any pixel "
        "(more: kept without thumbnail); also caps each decoding worker's address space",
        group="common",
        parse=parse_size,
        metavar="SIZE",
    )
    decode_workers: int = setting(
        2,
        "decoding worker processes making thumbnails (together within --decode-budget)",
        group="common",
        parse=parse_positive,
        metavar="N",
    )
    decode_timeout: float = setting(
        60.0,
        "seconds of CPU one decode may take (or ten times that of waiting) before its "
        "worker is killed: a failed attempt",
        group="common",
        parse=parse_seconds,
        metavar="SECONDS",
    )
    decode_attempts: int = setting(
        3,
        "failed decodes (worker killed, out of memory or time) before a photo is kept "
        "without thumbnails",
        group="common",
        parse=parse_positive,
        metavar="N",
    )
    memory_trim: bool = setting(
        True,
        "return freed memory to the system (glibc malloc_trim) when a burst of photos ends",
        parse=parse_bool,
    )
    video_previews: bool = setting(
        True,
        "make an H.264 MP4 preview (at most 720p) of each video a phone may not play, "
        "in the background, one at a time",
        parse=parse_bool,
        metavar="on|off",
    )
    decode_queue: int = setting(
        1000,
        "photos waiting for thumbnails held in memory; the rest wait in the catalog",
        group="common",
        parse=parse_positive,
        metavar="N",
    )
    ping_interval: float = setting(
        20.0, "seconds between WebSocket keep-alive pings", parse=float, metavar="SECONDS"
    )
    gc_interval: int = setting(
        3600,
        "seconds between background garbage collections",
        parse=parse_positive,
        metavar="SECONDS",
    )
    gc_grace: float = setting(
        3600.0,
        "seconds a blob nothing refers to any more (and a stored file no catalog row "
        "knows) is kept before gc removes it, so that another process's ingest of the "
        "same bytes meanwhile keeps it",
        group="common",
        parse=parse_seconds_or_zero,
        metavar="SECONDS",
    )
    trash_days: float = setting(
        30.0,
        "days a deleted photo stays in the trash before it is purged",
        group="common",
        parse=parse_days,
        metavar="DAYS",
    )
    upload_expiry: float = setting(
        24 * 3600.0,
        "seconds an unfinished resumable (tus) upload is kept after its last chunk",
        group="common",
        parse=parse_seconds,
        metavar="SECONDS",
    )
    media_url_ttl: float = setting(
        3600.0,
        "seconds the signed media URLs in image JSON (for <image>, <video>, previewImage, "
        "which send no token) stay valid, from 60 to 604800",
        parse=parse_media_url_ttl,
        metavar="SECONDS",
    )
    certfile: Path | None = setting(
        None,
        "TLS certificate chain (PEM): serve HTTPS and WSS; needs --keyfile",
        parse=parse_optional_path,
        metavar="FILE",
    )
    keyfile: Path | None = setting(
        None, "TLS private key (PEM) for --certfile", parse=parse_optional_path, metavar="FILE"
    )
    trust_forwarded: bool = setting(
        False,
        "believe --forwarded-header and X-Forwarded-Proto, from --trusted-proxies only "
        "(behind a reverse proxy that sets them)",
        parse=parse_bool,
    )
    forwarded_header: str = setting(
        "X-Forwarded-For",
        "the header a trusted proxy puts the client's address in (X-Forwarded-For: the "
        "rightmost address that is not a trusted proxy; any other header: its whole value)",
        parse=parse_header_name,
        metavar="HEADER",
    )
    trusted_proxies: tuple[str, ...] = setting(
        ("127.0.0.1/32", "::1/128"),
        "comma-separated addresses or networks of the reverse proxies whose forwarded "
        "headers are believed with --trust-forwarded",
        parse=parse_networks,
        metavar="NETWORKS",
    )
    max_connections: int = setting(
        1000,
        "open connections at most (lowered to fit the open-file limit at start-up)",
        parse=parse_positive,
        metavar="N",
    )
    max_connections_per_address: int = setting(
        64,
        "open connections at most from one address (an IPv6 /64); trusted proxies are exempt",
        parse=parse_positive,
        metavar="N",
    )
    header_timeout: float = setting(
        10.0,
        "seconds a connection may take to send a request's headers, or sit idle between requests",
        parse=parse_seconds,
        metavar="SECONDS",
    )
    body_timeout: float = setting(
        60.0,
        "seconds a request body may go without a byte arriving (however long it takes in all)",
        parse=parse_seconds,
        metavar="SECONDS",
    )
    max_unauthenticated_body: int = setting(
        64 * 1024,
        "largest body a request may send before its token is checked (and any public route)",
        parse=parse_size,
        metavar="SIZE",
    )
    max_pairing_attempts_total: int = setting(
        100,
        "pairing attempts per minute from all addresses together",
        parse=parse_positive,
        metavar="N",
    )
    pairing_code_guesses: int = setting(
        100,
        "wrong pairing guesses a code outlives; past them every live code is void",
        parse=parse_positive,
        metavar="N",
    )
    max_sockets_per_device: int = setting(
        5,
        "event sockets open at once on one token; a new one closes the oldest",
        parse=parse_positive,
        metavar="N",
    )
    max_sockets: int = setting(
        500, "event sockets open at once on the server", parse=parse_positive, metavar="N"
    )
    max_open_uploads: int = setting(
        200,
        "unfinished resumable (tus) uploads one user may have at once",
        group="common",
        parse=parse_positive,
        metavar="N",
    )
    max_staged_bytes: int = setting(
        16 * 1024**3,
        "bytes of unfinished resumable (tus) uploads one user may have declared at once",
        group="common",
        parse=parse_size,
        metavar="SIZE",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        "comma-separated web origins allowed to call the API from a browser (default: none)",
        parse=parse_origins,
        metavar="ORIGINS",
    )
    wechat_appid: str = setting(
        "", "the mini-program's AppID: turns on WeChat login (needs --wechat-secret)", metavar="ID"
    )
    wechat_secret: str = setting(
        "",
        "the mini-program's AppSecret (prefer the environment variable to the flag)",
        metavar="SECRET",
        secret=True,
    )
    events: str = setting(
        EVENTS_LOCAL,
        "where events go: local (sockets of this process) or a Redis URL such as "
        "redis://127.0.0.1:6379/0, through which several processes reach each other's sockets",
        group="events",
        parse=parse_events,
        metavar="URL",
        secret=True,  # a Redis URL may carry a password
    )
    catalog: str = setting(
        "",
        "where the catalog is: sqlite:///path/catalog.sqlite3 (the default is "
        "catalog.sqlite3 under --data) or postgresql://user@host:5432/database, which "
        "several server processes can share",
        group="common",
        parse=parse_catalog,
        metavar="URL",
        secret=True,  # a PostgreSQL URL may carry a password
    )
    blobs: str = setting(
        "",
        "where originals live: file:///absolute/folder (the default is blobs/ under --data) "
        "or s3://bucket/prefix?endpoint=http://host:port&region=...&addressing=path|virtual, "
        "with TUBEI_S3_ACCESS_KEY_ID and TUBEI_S3_SECRET_ACCESS_KEY (docs/object-storage.md)",
        group="common",
        parse=parse_blobs,
        metavar="URL",
    )
    s3_redirect: bool = setting(
        False,
        "with --blobs s3://...: answer a GET of an original with a 302 to a presigned URL "
        "of the object (valid 5 minutes), so its bytes do not pass through this server; "
        "such downloads send no progress events",
        parse=parse_bool,
    )
    thumbs: str = setting(
        "",
        "where derived images (thumbnails, posters) are kept: by default beside the "
        "originals (thumbs/ under --data; with --blobs s3:// also in its bucket under "
        "derived/, thumbs/ their cache); file:///absolute/folder keeps them on this disk "
        "only; s3://bucket/prefix?... in another bucket or prefix, thumbs/ their cache",
        group="common",
        parse=parse_blobs,
        metavar="URL",
    )
    # --blobs and --thumbs s3://... with the environment's credentials (from_sources).
    blobs_s3: S3Location | None = field(default=None, repr=False, metadata={"group": ""})
    thumbs_s3: S3Location | None = field(default=None, repr=False, metadata={"group": ""})
    catalog_pool: int = setting(
        8,
        "PostgreSQL catalog: connections this process keeps open at most",
        group="common",
        parse=parse_positive,
        metavar="N",
    )
    catalog_timeout: float = setting(
        10.0,
        "PostgreSQL catalog: seconds a statement may run, and a request may wait for a "
        "connection, before it is answered 503 backend_unavailable",
        group="common",
        parse=parse_seconds,
        metavar="SECONDS",
    )
    metrics: bool = setting(
        False,
        "serve GET /metrics in Prometheus's text format: on the main port to loopback "
        "callers only, or on --metrics-port",
        parse=parse_bool,
    )
    metrics_port: int = setting(
        0,
        "serve /metrics on a listener of its own at --metrics-host instead of the main "
        "port (0: on the main port); needs --metrics",
        parse=parse_port,
    )
    metrics_host: str = setting(
        "127.0.0.1", "address the --metrics-port listener binds (loopback by default)"
    )
    web: Path | None = setting(
        WEB_DIST,
        "folder of the built web app served at / (npm run build:web); off: serve none",
        parse=parse_web,
        metavar="DIR",
    )
    wechat_api: str = setting(
        "https://api.weixin.qq.com",
        "base URL of WeChat's API, for jscode2session",
        parse=parse_base_url,
        metavar="URL",
    )
