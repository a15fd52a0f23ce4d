"""Where --data, --blobs and --thumbs put things: folders under --data by default, a
file:/// folder of their own, or object storage with the environment's credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config_sources import from_sources
from server.config_values import SettingsError
from tests.test_config import S3_KEYS, parser


def test_blobs_default_to_the_data_folder() -> None:
    settings = from_sources(None, {"TUBEI_DATA": "/srv/t"})
    assert settings.blobs == "" and not settings.blobs_in_s3
    assert settings.blobs_dir == Path("/srv/t/blobs") and settings.blobs_s3 is None


def test_blobs_in_a_folder_of_their_own() -> None:
    settings = from_sources(parser().parse_args(["--blobs", "file:///mnt/big/blobs/"]), {})
    assert settings.blobs_dir == Path("/mnt/big/blobs") and not settings.blobs_in_s3
    assert settings.quarantine_dir == Path("/mnt/big/quarantine")  # renamed: one file system


def test_blobs_in_s3_take_their_credentials_from_the_environment() -> None:
    url = "s3://photos/tubei?endpoint=http://127.0.0.1:7480"
    settings = from_sources(None, {"TUBEI_BLOBS": url, **S3_KEYS})
    assert settings.blobs_in_s3 and settings.blobs_s3 is not None
    assert settings.blobs_s3.bucket == "photos" and settings.blobs_s3.prefix == "tubei/"
    assert settings.blobs_s3.access_key == "key" and settings.blobs_s3.secret_key == "secret"
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "environ", "message"),
    [
        ("s3://photos", {}, "--blobs .*no S3 credentials: set TUBEI_S3_ACCESS_KEY_ID"),
        (
            "s3://photos",
            {"TUBEI_S3_ACCESS_KEY_ID": "k"},
            "TUBEI_S3_SECRET_ACCESS_KEY is not set",
        ),
        ("s3://photos?endpoint=ftp://x", S3_KEYS, "--blobs: endpoint='ftp://x' is not an http"),
        ("s3://Photos", S3_KEYS, "--blobs: 'Photos' is not a bucket name"),
        ("s3://photos?timeout=3", S3_KEYS, "--blobs: unknown parameter 'timeout'"),
        ("file://host/blobs", {}, "--blobs: .* is not file:///absolute/folder"),
        ("file:///a/../b", {}, "--blobs: .* is not file:///absolute/folder"),
        ("gs://photos", {}, "--blobs: 'gs://photos' is not file:///absolute/folder or s3://"),
    ],
)
def test_malformed_blobs_say_what_is_wrong(url: str, environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_sources(parser().parse_args(["--blobs", url]), environ)


def test_thumbs_beside_the_originals_by_default_or_where_they_are_told() -> None:
    settings = from_sources(parser().parse_args(["--data", "/srv/t"]), {})
    assert settings.thumbs == "" and settings.thumbs_dir == Path("/srv/t/thumbs")
    here = from_sources(parser().parse_args(["--thumbs", "file:///var/cache/tubei/"]), {})
    assert here.thumbs_dir == Path("/var/cache/tubei") and here.thumbs_s3 is None
    url = "s3://thumbs/t?endpoint=http://127.0.0.1:7480"
    apart = from_sources(None, {"TUBEI_THUMBS": url, **S3_KEYS})
    assert apart.thumbs_s3 is not None and apart.thumbs_s3.bucket == "thumbs"
    assert apart.thumbs_s3.prefix == "t/" and apart.blobs_s3 is None


@pytest.mark.parametrize(
    ("url", "environ", "message"),
    [
        ("s3://thumbs", {}, "--thumbs .*no S3 credentials"),
        ("s3://Thumbs", S3_KEYS, "--thumbs: 'Thumbs' is not a bucket name"),
        ("file:///a/../b", {}, "--thumbs: .* is not file:///absolute/folder"),
    ],
)
def test_malformed_thumbs_say_what_is_wrong(
    url: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        from_sources(parser().parse_args(["--thumbs", url]), environ)
