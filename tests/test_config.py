"""server.config: sizes, precedence (CLI > environment > default), errors naming the setting."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from server.config import Settings
from server.config_sources import add_arguments, env_name, from_sources
from server.config_values import SettingsError


def parser(groups: tuple[str, ...] = ("common", "serve", "events")) -> argparse.ArgumentParser:
    made = argparse.ArgumentParser()
    add_arguments(made, groups)
    return made


def test_defaults() -> None:
    settings = from_sources(parser().parse_args([]), {})
    assert settings == Settings()
    assert settings.port == 8000
    assert settings.max_upload_size == 4 * 1024**3
    assert settings.data == Path("./data")
    assert settings.blobs_dir == Path("./data/blobs")
    assert settings.catalog_path == Path("./data/catalog.sqlite3")


def test_precedence_cli_over_environment_over_default() -> None:
    environ = {"TUBEI_PORT": "9001", "TUBEI_DATA": "/srv/env", "TUBEI_MAX_UPLOAD_SIZE": "1M"}
    args = parser().parse_args(["--port", "9002", "--data", "/srv/cli"])
    settings = from_sources(args, environ)
    assert settings.port == 9002
    assert settings.data == Path("/srv/cli")
    assert settings.max_upload_size == 1024**2  # from the environment
    assert settings.host == "0.0.0.0"  # the default

    settings = from_sources(parser().parse_args([]), environ)
    assert settings.port == 9001
    assert settings.data == Path("/srv/env")


def test_overrides_and_unrelated_environment() -> None:
    environ = {"TUBEI_PORT": "9001", "PORT": "1", "TUBEI_UNKNOWN": "x"}
    settings = from_sources(None, environ, port=7000)
    assert settings.port == 7000
    assert from_sources(None, {"PORT": "1"}).port == 8000


def test_commands_only_read_their_groups() -> None:
    args = parser(("common",)).parse_args(["--data", "/d"])
    settings = from_sources(args, {"TUBEI_PORT": "9001"}, ("common",))
    assert settings.data == Path("/d")
    assert settings.port == 8000
    with pytest.raises(SystemExit):
        parser(("common",)).parse_args(["--port", "1"])


@pytest.mark.parametrize(
    ("environ", "argv", "named"),
    [
        ({"TUBEI_PORT": "abc"}, [], "TUBEI_PORT"),
        ({"TUBEI_PORT": "70000"}, [], "TUBEI_PORT"),
        ({}, ["--port", "abc"], "--port"),
        ({"TUBEI_MAX_UPLOAD_SIZE": "lots"}, [], "TUBEI_MAX_UPLOAD_SIZE"),
        ({}, ["--max-upload-size", "lots"], "--max-upload-size"),
        ({"TUBEI_MAX_PIXELS": "0"}, [], "TUBEI_MAX_PIXELS"),
        ({"TUBEI_GC_INTERVAL": "soon"}, [], "TUBEI_GC_INTERVAL"),
        ({"TUBEI_TRASH_DAYS": "a month"}, [], "TUBEI_TRASH_DAYS"),
        ({"TUBEI_TRASH_DAYS": "-1"}, [], "TUBEI_TRASH_DAYS"),
        ({"TUBEI_UPLOAD_EXPIRY": "soon"}, [], "TUBEI_UPLOAD_EXPIRY"),
        ({"TUBEI_UPLOAD_EXPIRY": "0"}, [], "TUBEI_UPLOAD_EXPIRY"),
        ({"TUBEI_UPLOAD_EXPIRY": "nan"}, [], "TUBEI_UPLOAD_EXPIRY"),
        ({}, ["--upload-expiry", "-60"], "--upload-expiry"),
        ({"TUBEI_MEDIA_URL_TTL": "an hour"}, [], "TUBEI_MEDIA_URL_TTL"),
        ({"TUBEI_MEDIA_URL_TTL": "30"}, [], "TUBEI_MEDIA_URL_TTL"),
        ({}, ["--media-url-ttl", "604801"], "--media-url-ttl"),
        ({"TUBEI_LOG_LEVEL": "chatty"}, [], "TUBEI_LOG_LEVEL"),
        ({}, ["--log-level", "chatty"], "--log-level"),
        ({"TUBEI_TRUSTED_PROXIES": "10.0.0.0/8,nginx"}, [], "TUBEI_TRUSTED_PROXIES"),
        ({}, ["--forwarded-header", "X Real Ip"], "--forwarded-header"),
        ({}, ["--header-timeout", "0"], "--header-timeout"),
        ({"TUBEI_BODY_TIMEOUT": "inf"}, [], "TUBEI_BODY_TIMEOUT"),
        ({}, ["--max-connections", "0"], "--max-connections"),
        ({}, ["--max-sockets-per-device", "-1"], "--max-sockets-per-device"),
        ({"TUBEI_MAX_UNAUTHENTICATED_BODY": "lots"}, [], "TUBEI_MAX_UNAUTHENTICATED_BODY"),
    ],
)
def test_malformed_settings_name_their_source(
    environ: dict[str, str], argv: list[str], named: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        from_sources(parser().parse_args(argv), environ)
    assert str(raised.value).startswith(named + ":")


def test_a_good_cli_value_hides_a_bad_environment_one() -> None:
    settings = from_sources(parser().parse_args(["--port", "9"]), {"TUBEI_PORT": "abc"})
    assert settings.port == 9


def test_log_level_is_case_insensitive() -> None:
    assert from_sources(None, {"TUBEI_LOG_LEVEL": "DEBUG"}).log_level == "debug"


def test_every_setting_has_a_flag_and_an_environment_variable() -> None:
    help_text = parser().format_help()
    # A field of no group is resolved from the settings (blobs_s3), never given itself.
    for name, f in Settings.__dataclass_fields__.items():
        if not f.metadata["group"]:
            continue
        assert "--" + name.replace("_", "-") in help_text
        assert env_name(name) in help_text


def test_media_url_ttl_is_an_hour_unless_set() -> None:
    assert Settings().media_url_ttl == 3600
    assert from_sources(parser().parse_args(["--media-url-ttl", "60"]), {}).media_url_ttl == 60
    assert from_sources(None, {"TUBEI_MEDIA_URL_TTL": "604800"}).media_url_ttl == 604800


def test_upload_expiry_is_seconds_read_by_every_command() -> None:
    assert Settings().upload_expiry == 24 * 3600
    args = parser(("common",)).parse_args(["--upload-expiry", "90.5"])
    assert from_sources(args, {}, ("common",)).upload_expiry == 90.5
    assert from_sources(None, {"TUBEI_UPLOAD_EXPIRY": "600"}, ("common",)).upload_expiry == 600


# security settings ------------------------------------------------------------------


def test_true_or_false_settings_are_also_bare_flags() -> None:
    args = parser().parse_args(["--trust-forwarded"])
    assert from_sources(args, {}).trust_forwarded is True
    args = parser().parse_args(["--trust-forwarded", "false"])
    assert from_sources(args, {"TUBEI_TRUST_FORWARDED": "true"}).trust_forwarded is False
    assert from_sources(None, {"TUBEI_TRUST_FORWARDED": "yes"}).trust_forwarded is True
    assert from_sources(None, {}).trust_forwarded is False
    with pytest.raises(SettingsError, match="TUBEI_TRUST_FORWARDED"):
        from_sources(None, {"TUBEI_TRUST_FORWARDED": "maybe"})


def test_cors_origins_are_exact_origins() -> None:
    assert Settings().cors_origins == ()
    args = parser().parse_args(["--cors-origins", " https://A.example , http://localhost:3000,"])
    settings = from_sources(args, {})
    assert settings.cors_origins == ("https://a.example", "http://localhost:3000")
    assert from_sources(None, {"TUBEI_CORS_ORIGINS": "http://[::1]:8080"}).cors_origins == (
        "http://[::1]:8080",
    )
    for bad in ("*", "null", "https://a.example/", "https://a.example/app", "a.example"):
        with pytest.raises(SettingsError, match="TUBEI_CORS_ORIGINS"):
            from_sources(None, {"TUBEI_CORS_ORIGINS": bad})


def test_tls_files_go_together(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    settings = from_sources(None, {"TUBEI_CERTFILE": str(cert), "TUBEI_KEYFILE": str(key)})
    assert (settings.certfile, settings.keyfile) == (cert, key)
    assert from_sources(None, {"TUBEI_CERTFILE": ""}).certfile is None
    for environ in ({"TUBEI_CERTFILE": str(cert)}, {"TUBEI_KEYFILE": str(key)}):
        with pytest.raises(SettingsError, match="--certfile and --keyfile"):
            from_sources(None, environ)


def test_the_wechat_secret_is_never_shown() -> None:
    secret = "0123456789abcdef0123456789abcdef"
    settings = from_sources(None, {"TUBEI_WECHAT_APPID": "wx1234", "TUBEI_WECHAT_SECRET": secret})
    assert settings.wechat_secret == secret
    assert settings.wechat_api == "https://api.weixin.qq.com"
    assert secret not in repr(settings) and secret not in str(settings)
    assert "wx1234" in repr(settings)
    with pytest.raises(SettingsError, match="--wechat-appid and --wechat-secret") as raised:
        from_sources(None, {"TUBEI_WECHAT_SECRET": secret})
    assert secret not in str(raised.value)
    api = from_sources(None, {"TUBEI_WECHAT_API": "http://127.0.0.1:9/wx/"}).wechat_api
    assert api == "http://127.0.0.1:9/wx"
    for bad in ("api.weixin.qq.com", "ftp://x", "https://x/?a=1"):
        with pytest.raises(SettingsError, match="TUBEI_WECHAT_API"):
            from_sources(None, {"TUBEI_WECHAT_API": bad})


# --events ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("local", "local"),
        (" LOCAL ", "local"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://redis.lan", "redis://redis.lan"),
        ("redis://:secret@10.0.0.5:6380/3", "redis://:secret@10.0.0.5:6380/3"),
        ("redis://[::1]:6379/1", "redis://[::1]:6379/1"),
        ("rediss://redis.example:6380/0", "rediss://redis.example:6380/0"),
        (
            "rediss://r.example/0?ssl_ca_certs=/etc/ca.pem",
            "rediss://r.example/0?ssl_ca_certs=/etc/ca.pem",
        ),
        ("unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
    ],
)
def test_events_is_local_or_a_redis_url(text: str, value: str) -> None:
    assert Settings().events == "local"
    assert from_sources(None, {"TUBEI_EVENTS": text}).events == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "redis",
        "127.0.0.1:6379",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://:6379/0",
        "redis://h:0",
        "redis://h:99999",
        "redis://h:port",
        "redis://h/zero",
        "redis://h/0/1",
        "redis://h/0?db=1",
        "redis://h/0#x",
        "rediss://h/0?ssl_certfile=/x",
        "unix://host/run/redis.sock",
        "unix://",
        "unix:///run/redis.sock?password=x",
    ],
)
def test_a_malformed_events_url_names_the_setting(text: str) -> None:
    with pytest.raises(SettingsError) as raised:
        from_sources(None, {"TUBEI_EVENTS": text})
    assert str(raised.value).startswith("TUBEI_EVENTS:")
    with pytest.raises(SettingsError) as raised:
        from_sources(parser().parse_args(["--events", text]), {})
    assert str(raised.value).startswith("--events:")


def test_a_redis_password_is_never_shown() -> None:
    with pytest.raises(SettingsError) as raised:
        from_sources(None, {"TUBEI_EVENTS": "redis://:hunter2@h:99999/0"})
    assert "hunter2" not in str(raised.value) and "***" in str(raised.value)
    settings = from_sources(None, {"TUBEI_EVENTS": "redis://:hunter2@h:6379/0"})
    assert "hunter2" not in repr(settings)


def test_only_serve_and_revoke_take_events() -> None:
    from server.__main__ import build_parser

    for argv in (["serve", "--events", "local"], ["revoke", "--events", "local", "7"]):
        assert build_parser().parse_args(argv).events == "local"
    for command in ("token", "pair", "devices", "gc", "scrub"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--events", "local"])
    assert from_sources(None, {"TUBEI_EVENTS": "nonsense"}, ("common",)).events == "local"


def test_budget_settings_parse_and_agree() -> None:
    argv = ["--trusted-proxies", "10.1.2.3, 192.168.0.0/16,::1", "--body-timeout", "2.5"]
    argv += ["--max-unauthenticated-body", "16K", "--forwarded-header", "X-Real-Ip"]
    settings = from_sources(parser().parse_args(argv), {"TUBEI_MAX_OPEN_UPLOADS": "7"})
    assert settings.trusted_proxies == ("10.1.2.3/32", "192.168.0.0/16", "::1/128")
    assert settings.body_timeout == 2.5 and settings.max_unauthenticated_body == 16 * 1024
    assert settings.forwarded_header == "X-Real-Ip" and settings.max_open_uploads == 7
    with pytest.raises(SettingsError) as raised:
        from_sources(parser().parse_args(["--max-staged-bytes", "1G"]), {})
    assert "--max-staged-bytes" in str(raised.value)


S3_KEYS = {"TUBEI_S3_ACCESS_KEY_ID": "key", "TUBEI_S3_SECRET_ACCESS_KEY": "secret"}


def test_s3_redirect_needs_blobs_in_s3() -> None:
    with pytest.raises(SettingsError, match=r"--s3-redirect .* needs --blobs s3://"):
        from_sources(parser().parse_args(["--s3-redirect"]), {})
    url = "s3://photos?endpoint=http://127.0.0.1:7480"
    settings = from_sources(parser().parse_args(["--s3-redirect", "--blobs", url]), S3_KEYS)
    assert settings.s3_redirect
