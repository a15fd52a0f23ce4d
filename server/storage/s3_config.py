"""Where an S3 store is, from one URL and the environment's credentials.

    s3://bucket/prefix?endpoint=http://host:port&region=...&addressing=path|virtual

The endpoint defaults to AWS's for the region; the region to us-east-1; addressing to
`virtual` for AWS and `path` for any other endpoint (MinIO, Ceph and most gateways on
an address without wildcard DNS want path-style). Credentials come from
TUBEI_S3_ACCESS_KEY_ID / TUBEI_S3_SECRET_ACCESS_KEY, else AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), never from the URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

Addressing = Literal["path", "virtual"]

# S3's rules for a bucket name (the DNS-compatible ones every provider accepts).
_BUCKET_RE = re.compile(r"\A(?!\d+\.\d+\.\d+\.\d+\Z)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_REGION_RE = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
_PREFIX_RE = re.compile(r"\A[A-Za-z0-9._/-]*\Z")
_QUERY_KEYS = ("endpoint", "region", "addressing")
KEY_VARIABLES = (
    ("TUBEI_S3_ACCESS_KEY_ID", "TUBEI_S3_SECRET_ACCESS_KEY"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"
    endpoint: str | None  # None: AWS's own for the region
    region: str
    addressing: Addressing
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def url(self) -> str:
        """The URL again, without credentials (for logs and messages)."""
        query = f"?region={self.region}&addressing={self.addressing}"
        if self.endpoint:
            query += f"&endpoint={self.endpoint}"
        return f"s3://{self.bucket}/{self.prefix}{query}"


def _endpoint(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint={text!r} is not an http:// or https:// address")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"endpoint={text!r} must be scheme://host[:port] only")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"endpoint={text!r} has a bad port") from None
    return f"{parts.scheme}://{parts.netloc}"


def credentials(environ: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(access key, secret key, session token) from the first pair of variables set."""
    for key_name, secret_name in KEY_VARIABLES:
        key, secret = environ.get(key_name, ""), environ.get(secret_name, "")
        if key or secret:
            if not (key and secret):
                missing = secret_name if key else key_name
                raise ValueError(f"{missing} is not set (it goes with {key_name})")
            token = environ.get("AWS_SESSION_TOKEN") if key_name.startswith("AWS") else None
            return key, secret, token or None
    raise ValueError(
        "no S3 credentials: set TUBEI_S3_ACCESS_KEY_ID and TUBEI_S3_SECRET_ACCESS_KEY "
        "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )


def parse_s3_url(text: str, environ: Mapping[str, str] | None = None) -> S3Location:
    """An S3Location from `s3://bucket/prefix?...`; ValueError saying what is wrong."""
    parts = urlsplit(text)
    if parts.scheme != "s3":
        raise ValueError(f"{text!r} is not an s3:// URL")
    if parts.username or parts.password:
        raise ValueError(
            "credentials do not go in the URL: set TUBEI_S3_ACCESS_KEY_ID and "
            "TUBEI_S3_SECRET_ACCESS_KEY"
        )
    bucket = parts.netloc
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ValueError(f"{bucket!r} is not a bucket name (3-63 of a-z 0-9 . -)")
    prefix = parts.path.strip("/")
    if not _PREFIX_RE.match(prefix) or any(p in (".", "..") for p in prefix.split("/")):
        raise ValueError(f"prefix {prefix!r} may hold only A-Z a-z 0-9 . _ - /")
    prefix = re.sub("/+", "/", prefix)
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in _QUERY_KEYS:
            raise ValueError(f"unknown parameter {key!r} (known: {', '.join(_QUERY_KEYS)})")
        if key in query:
            raise ValueError(f"{key}= is given twice")
        query[key] = value
    endpoint = _endpoint(query["endpoint"]) if "endpoint" in query else None
    region = query.get("region", "us-east-1")
    if not _REGION_RE.match(region):
        raise ValueError(f"region={region!r} is not a region name")
    addressing = query.get("addressing", "path" if endpoint else "virtual")
    if addressing not in ("path", "virtual"):
        raise ValueError(f"addressing={addressing!r} is not path or virtual")
    https = endpoint is None or endpoint.startswith("https:")
    if addressing == "virtual" and "." in bucket and https:
        raise ValueError(f"bucket {bucket!r} has dots: TLS needs addressing=path")
    key, secret, token = credentials(os.environ if environ is None else environ)
    return S3Location(
        bucket=bucket,
        prefix=f"{prefix}/" if prefix else "",
        endpoint=endpoint,
        region=region,
        addressing="path" if addressing == "path" else "virtual",
        access_key=key,
        secret_key=secret,
        session_token=token,
    )
