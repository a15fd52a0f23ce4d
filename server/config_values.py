"""How a setting's text becomes its value: sizes, seconds, ports, networks, origins, and
the URLs of the catalog and the event hub. Each parser raises ValueError with a message
that `from_sources` puts after the setting's name, in the SettingsError it raises."""

from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from pathlib import Path

from .storage.s3_config import parse_s3_url

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


MAX_MEDIA_URL_TTL = 7 * 24 * 3600.0


def parse_media_url_ttl(text: str) -> float:
    """Seconds a signed media URL lives: at least a minute (a phone must be able to use
    one it was just given), at most a week (it outlives the device it was issued to)."""
    seconds = parse_seconds(text)
    if not 60 <= seconds <= MAX_MEDIA_URL_TTL:
        raise ValueError(f"{text!r} is not from 60 to {MAX_MEDIA_URL_TTL:.0f} seconds")
    return seconds


def parse_seconds_or_zero(text: str) -> float:
    seconds = float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{text!r} is not a number of seconds (0 or more)")
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


# The built web app of this checkout (`npm run build:web` writes it).
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


def parse_web(text: str) -> Path | None:
    """A folder of the built web app, or `off` (None): serve no web app at /."""
    if text.strip().lower() == "off":
        return None
    if not text.strip():
        raise ValueError("give the built web app's folder, or off")
    return Path(text.strip()).expanduser()


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


def split_url(value: str, example: str) -> tuple[urllib.parse.SplitResult, int | None]:
    """The URL's parts and its port, or a ValueError that shows it (password hidden)
    beside the `example` of what was wanted."""
    try:
        url = urllib.parse.urlsplit(value)
        return url, url.port  # .port raises ValueError when it is not a port number
    except ValueError:
        raise ValueError(f"{redact_url(value)!r} is not {example}") from None


def parse_events(text: str) -> str:
    """`local`, or where Redis is: `redis://[:password@]host[:port][/db]`, `rediss://...`
    (TLS) or `unix:///path/to/redis.sock[?db=N]`."""
    value = text.strip()
    if value.lower() == EVENTS_LOCAL:
        return EVENTS_LOCAL
    example = "local, redis://host:6379/0, rediss://host:6379/0 or unix:///run/redis.sock"
    url, port = split_url(value, example)
    shown = redact_url(value)
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
    url, port = split_url(value, example)
    shown = redact_url(value)
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


def parse_blobs(text: str) -> str:
    """Where originals live: "" (blobs/ under --data), `file:///absolute/folder`, or an
    object store, `s3://bucket/prefix?endpoint=...&region=...&addressing=path|virtual`
    (its credentials are looked up once the environment is known: `config_sources.from_sources`)."""
    value = text.strip()
    if not value:
        return ""
    example = "file:///absolute/folder or s3://bucket/prefix?endpoint=http://host:port"
    url, _ = split_url(value, example)
    if url.scheme == "file":
        if url.netloc or not url.path.startswith("/") or url.query or url.fragment:
            raise ValueError(f"{value!r} is not file:///absolute/folder (no host, no query)")
        if len(url.path.rstrip("/")) < 1 or ".." in url.path.split("/"):
            raise ValueError(f"{value!r} is not file:///absolute/folder")
        return value
    if url.scheme == "s3":
        # The URL's own form now; credentials (never in it) with the environment.
        parse_s3_url(value, {"TUBEI_S3_ACCESS_KEY_ID": "-", "TUBEI_S3_SECRET_ACCESS_KEY": "-"})
        return value
    raise ValueError(f"{value!r} is not {example}")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""
