"""One typed Settings object: command line > environment (TUBEI_*) > defaults.

Every setting is declared once, with its default, its help text and the group of
commands that take it. A malformed value is an error at start-up that names the
setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "TUBEI_"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_size(text: str) -> int:
    """`4GiB`, `4G`, `512M`, `1048576` -> bytes (binary multiples)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size such as 512M or 4GiB")
    number, unit, _ = match.groups()
    return int(float(number) * 1024 ** _POWERS[unit.lower()])


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not true or false")


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"{port} is not a TCP port")
    return port


def parse_positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{value} is not a positive number")
    return value


def parse_days(text: str) -> float:
    days = float(text)
    if not math.isfinite(days) or days < 0:
        raise ValueError(f"{text!r} is not a number of days")
    return days


def parse_seconds(text: str) -> float:
    seconds = float(text)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r} is not a positive number of seconds")
    return seconds


def parse_networks(text: str) -> tuple[str, ...]:
    """`127.0.0.1,10.0.0.0/8,::1` -> networks as written by ipaddress (strict=False)."""
    networks: list[str] = []
    for part in text.split(","):
        if part.strip():
            try:
                networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not an IP address or network") from None
    return tuple(dict.fromkeys(networks))


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def parse_header_name(text: str) -> str:
    name = text.strip()
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{text!r} is not an HTTP header name")
    return name


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def parse_optional_path(text: str) -> Path | None:
    return Path(text) if text.strip() else None


def parse_base_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", url):
        raise ValueError(f"{text!r} is not an http:// or https:// base URL")
    return url


_ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")


def parse_origins(text: str) -> tuple[str, ...]:
    """`https://a.example,http://localhost:3000` -> exact origins, lowercased."""
    origins: list[str] = []
    for part in text.split(","):
        origin = part.strip().lower()
        if not origin:
            continue
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{part.strip()!r} is not an origin such as https://photos.example "
                "(scheme, host and optional port; no path, no wildcard)"
            )
        origins.append(origin)
    return tuple(dict.fromkeys(origins))


EVENTS_LOCAL = "local"


def redact_url(url: str) -> str:
    """The URL with its password, if any, replaced by `***`: for messages and logs."""
    return re.sub(r"^([a-z]+://[^:/@]*:)[^/]*@", r"\1***@", url.strip(), flags=re.IGNORECASE)


def parse_events(text: str) -> str:
    """`local`, or where Redis is: `redis://[:password@]host[:port][/db]`, `rediss://...`
    (TLS) or `unix:///path/to/redis.sock[?db=N]`."""
    value = text.strip()
    if value.lower() == EVENTS_LOCAL:
        return EVENTS_LOCAL
    example = "local, redis://host:6379/0, rediss://host:6379/0 or unix:///run/redis.sock"
    shown = redact_url(value)
    try:
        url = urllib.parse.urlsplit(value)
        port = url.port  # raises ValueError when it is not a port number
    except ValueError:
        raise ValueError(f"{shown!r} is not {example}") from None
    if url.scheme in ("redis", "rediss"):
        # rediss://...?ssl_ca_certs=/etc/tubei/ca.pem: a private CA for Redis's certificate
        query = r"(ssl_ca_certs=[^&]+)?" if url.scheme == "rediss" else ""
        good = (
            bool(url.hostname)
            and port != 0
            and re.fullmatch(r"/?|/\d{1,5}", url.path) is not None
            and re.fullmatch(query, url.query) is not None
        )
    elif url.scheme == "unix":
        # unix:///path or unix://user@/path (a user name for Redis ACLs)
        good = (
            not url.hostname
            and url.path.startswith("/")
            and re.fullmatch(r"(db=\d{1,5})?", url.query) is not None
        )
    else:
        good = False
    good = good and not url.fragment
    if not good:
        raise ValueError(f"{shown!r} is not {example}")
    return value


def parse_catalog(text: str) -> str:
    """Where the catalog is: `sqlite:///absolute/path.sqlite3`, or a PostgreSQL URL
    `postgresql://user[:password]@host[:port]/database[?sslmode=...]`; "" for the
    SQLite file under --data."""
    value = text.strip()
    if not value:
        return ""
    example = "sqlite:///path/to/catalog.sqlite3 or postgresql://user@host:5432/database"
    shown = redact_url(value)
    try:
        url = urllib.parse.urlsplit(value)
        port = url.port  # raises ValueError when it is not a port number
    except ValueError:
        raise ValueError(f"{shown!r} is not {example}") from None
    if url.scheme == "sqlite":
        good = not url.netloc and url.path.startswith("/") and len(url.path) > 1
        good = good and not url.query and not url.path.endswith("/")
    elif url.scheme in ("postgresql", "postgres"):
        good = (
            port != 0
            and re.fullmatch(r"/[^/]+", url.path) is not None
            and re.fullmatch(r"([a-z_]+=[^&]*)?(&[a-z_]+=[^&]*)*", url.query) is not None
        )
    else:
        good = False
    if not good or url.fragment:
        raise ValueError(f"{shown!r} is not {example}")
    return value


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
class Settings:
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
    wechat_api: str = setting(
        "https://api.weixin.qq.com",
        "base URL of WeChat's API, for jscode2session",
        parse=parse_base_url,
        metavar="URL",
    )

    @property
    def blobs_dir(self) -> Path:
        return self.data / "blobs"

    @property
    def thumbs_dir(self) -> Path:
        return self.data / "thumbs"

    @property
    def tmp_dir(self) -> Path:
        return self.data / "tmp"

    @property
    def tus_dir(self) -> Path:
        return self.tmp_dir / "tus"

    @property
    def quarantine_dir(self) -> Path:
        return self.data / "quarantine"

    @property
    def catalog_url(self) -> str:
        """The catalog's URL, the SQLite file under --data unless --catalog says otherwise."""
        return self.catalog or f"sqlite://{self.catalog_path.absolute()}"

    @property
    def catalog_is_sqlite(self) -> bool:
        return self.catalog_url.startswith("sqlite:")

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog's file (only meaningful when the catalog is SQLite)."""
        if self.catalog.startswith("sqlite://"):
            return Path(self.catalog.removeprefix("sqlite://"))
        return self.data / "catalog.sqlite3"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


def _fields(groups: Iterable[str]) -> list[dataclasses.Field[Any]]:
    wanted = set(groups)
    return [f for f in dataclasses.fields(Settings) if f.metadata["group"] in wanted]


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def add_arguments(parser: argparse.ArgumentParser, groups: Iterable[str]) -> None:
    """Declare `--flag` for every setting of these groups (values parsed later)."""
    for f in _fields(groups):
        # A true-or-false setting is also a bare flag: `--trust-forwarded`.
        flag: dict[str, Any] = (
            {"nargs": "?", "const": "true"} if f.metadata["parse"] is parse_bool else {}
        )
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            metavar=f.metadata["metavar"],
            help=f"{f.metadata['help']} (env {env_name(f.name)}; default {f.default})",
            **flag,
        )


def from_sources(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    groups: Iterable[str] = ("common", "serve", "events"),
    **overrides: Any,
) -> Settings:
    """Build Settings: keyword overrides > command line > environment > defaults."""
    environ = environ or {}
    values: dict[str, Any] = {}
    for f in _fields(groups):
        raw = getattr(args, f.name, None) if args is not None else None
        source = f"--{f.name.replace('_', '-')}"
        if raw is None and env_name(f.name) in environ:
            raw, source = environ[env_name(f.name)], env_name(f.name)
        if raw is None:
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as error:
            raise SettingsError(f"{source}: {error}") from None
    values.update(overrides)
    settings = Settings(**values)
    if settings.log_level not in LOG_LEVELS:
        raise SettingsError(f"log_level: {settings.log_level!r} is not one of {LOG_LEVELS}")
    if settings.max_staged_bytes < settings.max_upload_size:
        raise SettingsError(
            f"--max-staged-bytes ({settings.max_staged_bytes}) is less than --max-upload-size "
            f"({settings.max_upload_size}): the largest upload could never be started"
        )
    for one, other in (("certfile", "keyfile"), ("wechat_appid", "wechat_secret")):
        if bool(getattr(settings, one)) != bool(getattr(settings, other)):
            raise SettingsError(
                f"--{one.replace('_', '-')} and --{other.replace('_', '-')} "
                f"({env_name(one)}, {env_name(other)}) go together: set both or neither"
            )
    if settings.metrics_port and not settings.metrics:
        raise SettingsError("--metrics-port (TUBEI_METRICS_PORT) needs --metrics (TUBEI_METRICS)")
    if settings.metrics_port and settings.metrics_port == settings.port:
        raise SettingsError(
            f"--metrics-port: {settings.metrics_port} is already --port; choose another port"
        )
    return settings
