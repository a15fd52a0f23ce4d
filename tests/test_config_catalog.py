"""--catalog: SQLite under --data by default, a sqlite:/// file, or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.__main__ import build_parser
from server.config import Settings
from server.config_sources import from_sources
from server.config_values import SettingsError


def test_the_default_is_the_sqlite_file_under_data(tmp_path: Path) -> None:
    settings = from_sources(None, {"TUBEI_DATA": str(tmp_path)})
    assert settings.catalog_is_sqlite
    assert settings.catalog_path == tmp_path / "catalog.sqlite3"
    assert settings.catalog_url == f"sqlite://{(tmp_path / 'catalog.sqlite3').absolute()}"


def test_a_sqlite_url_names_the_file() -> None:
    settings = from_sources(None, {"TUBEI_CATALOG": "sqlite:///srv/tubei/catalog.db"})
    assert settings.catalog_is_sqlite
    assert settings.catalog_path == Path("/srv/tubei/catalog.db")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://tubei@db.lan:5432/photos",
        "postgres://tubei:pw@127.0.0.1/photos?sslmode=require",
        "postgresql:///photos",  # the local socket
    ],
)
def test_postgresql_urls_are_taken_as_given(url: str) -> None:
    settings = from_sources(None, {"TUBEI_CATALOG": url})
    assert settings.catalog == url and not settings.catalog_is_sqlite


@pytest.mark.parametrize(
    "url",
    [
        "mysql://h/db",
        "postgresql://h:99999/db",
        "postgresql://h:0/db",
        "postgresql://h/",
        "postgresql://h/a/b",
        "postgresql://h/db#x",
        "postgresql://h/db?Bad Key=1",
        "sqlite://relative.db",
        "sqlite:///",
        "sqlite:///dir/",
        "sqlite:///x.db?mode=ro",
    ],
)
def test_a_malformed_catalog_url_names_the_setting(url: str) -> None:
    with pytest.raises(SettingsError) as raised:
        from_sources(None, {"TUBEI_CATALOG": url})
    assert str(raised.value).startswith("TUBEI_CATALOG:")
    args = build_parser().parse_args(["serve", "--catalog", url])
    with pytest.raises(SettingsError) as raised:
        from_sources(args, {})
    assert str(raised.value).startswith("--catalog:")


def test_a_catalog_password_is_never_shown() -> None:
    with pytest.raises(SettingsError) as raised:
        from_sources(None, {"TUBEI_CATALOG": "postgresql://u:hunter2@h:99999/db"})
    assert "hunter2" not in str(raised.value)
    settings = from_sources(None, {"TUBEI_CATALOG": "postgresql://u:hunter2@h/db"})
    assert "hunter2" not in repr(settings)


def test_pool_settings_are_read_by_every_command() -> None:
    for argv in (["serve"], ["token", "--user", "mum"], ["gc"], ["scrub"], ["devices"]):
        args = build_parser().parse_args([*argv, "--catalog-pool", "3", "--catalog-timeout", "2.5"])
        settings = from_sources(args, {}, groups=("common", "serve", "events"))
        assert (settings.catalog_pool, settings.catalog_timeout) == (3, 2.5)
    with pytest.raises(SettingsError, match="TUBEI_CATALOG_POOL"):
        from_sources(None, {"TUBEI_CATALOG_POOL": "0"})
    assert Settings().catalog_pool == 8 and Settings().catalog_timeout == 10.0
