"""Settings from their sources: the command line's flags, the environment, defaults.

`add_arguments` declares a flag for each setting of some groups; `from_sources` reads
them (flags over `TUBEI_*` variables over defaults), parses each with its setting's
parser, and checks what only makes sense together. The settings themselves, with their
help, defaults and parsers, are declared once, in config.py.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .config import Settings
from .config_values import LOG_LEVELS, SettingsError, parse_bool

ENV_PREFIX = "TUBEI_"


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
    if settings.blobs_in_s3 and settings.blobs_s3 is None:
        settings = dataclasses.replace(settings, blobs_s3=settings.s3_location(environ))
    if settings.thumbs.startswith("s3://") and settings.thumbs_s3 is None:
        located = settings.s3_location(environ, "thumbs")
        settings = dataclasses.replace(settings, thumbs_s3=located)
    if settings.s3_redirect and not settings.blobs_in_s3:
        raise SettingsError("--s3-redirect (TUBEI_S3_REDIRECT) needs --blobs s3://...")
    if settings.metrics_port and not settings.metrics:
        raise SettingsError("--metrics-port (TUBEI_METRICS_PORT) needs --metrics (TUBEI_METRICS)")
    if settings.metrics_port and settings.metrics_port == settings.port:
        raise SettingsError(
            f"--metrics-port: {settings.metrics_port} is already --port; choose another port"
        )
    return settings
