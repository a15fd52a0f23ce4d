"""parse_s3_url: an S3 location from one URL and the environment's credentials."""

from __future__ import annotations

import pytest

from server.storage.s3_config import parse_s3_url

KEYS = {"TUBEI_S3_ACCESS_KEY_ID": "AK", "TUBEI_S3_SECRET_ACCESS_KEY": "SK"}


def test_a_full_url() -> None:
    location = parse_s3_url(
        "s3://photos/family/tubei?endpoint=http://127.0.0.1:7480&region=ap-guangzhou"
        "&addressing=path",
        KEYS,
    )
    assert location.bucket == "photos"
    assert location.prefix == "family/tubei/"
    assert location.endpoint == "http://127.0.0.1:7480"
    assert location.region == "ap-guangzhou"
    assert location.addressing == "path"
    assert (location.access_key, location.secret_key) == ("AK", "SK")
    assert "SK" not in repr(location) and "SK" not in location.url()


def test_defaults() -> None:
    aws = parse_s3_url("s3://photos", KEYS)
    assert (aws.prefix, aws.endpoint, aws.region, aws.addressing) == (
        "",
        None,
        "us-east-1",
        "virtual",
    )
    gateway = parse_s3_url("s3://photos/?endpoint=https://cos.example.com", KEYS)
    assert gateway.addressing == "path"  # any endpoint of our own: path-style unless told
    virtual = parse_s3_url("s3://photos?endpoint=https://cos.example.com&addressing=virtual", KEYS)
    assert virtual.addressing == "virtual"


def test_credentials_from_the_environment() -> None:
    aws = {"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "AWS_SESSION_TOKEN": "T"}
    location = parse_s3_url("s3://photos", aws)
    assert (location.access_key, location.secret_key, location.session_token) == ("A", "S", "T")
    both = parse_s3_url("s3://photos", {**aws, **KEYS})
    assert (both.access_key, both.session_token) == ("AK", None)  # Tubei's own win


@pytest.mark.parametrize(
    ("url", "environ", "says"),
    [
        ("file:///data", KEYS, "not an s3:// URL"),
        ("s3://AB", KEYS, "not a bucket name"),
        ("s3://192.168.1.1", KEYS, "not a bucket name"),
        ("s3://photos/a b", KEYS, "prefix"),
        ("s3://photos/../up", KEYS, "prefix"),
        ("s3://photos?endpoint=ftp://x", KEYS, "endpoint="),
        ("s3://photos?endpoint=http://x:99999", KEYS, "endpoint="),
        ("s3://photos?endpoint=http://x/path", KEYS, "endpoint="),
        ("s3://photos?region=Mars%20One", KEYS, "region="),
        ("s3://photos?addressing=dns", KEYS, "addressing="),
        ("s3://photos?timeout=3", KEYS, "unknown parameter 'timeout'"),
        ("s3://photos?region=a&region=b", KEYS, "given twice"),
        ("s3://a.b.c?addressing=virtual", KEYS, "TLS needs addressing=path"),
        ("s3://key:secret@photos", KEYS, "credentials do not go in the URL"),
        ("s3://photos", {}, "TUBEI_S3_ACCESS_KEY_ID and TUBEI_S3_SECRET_ACCESS_KEY"),
        ("s3://photos", {"TUBEI_S3_ACCESS_KEY_ID": "AK"}, "TUBEI_S3_SECRET_ACCESS_KEY is not set"),
        ("s3://photos", {"AWS_SECRET_ACCESS_KEY": "S"}, "AWS_ACCESS_KEY_ID is not set"),
    ],
)
def test_what_is_wrong_is_named(url: str, environ: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("?", r"\?")):
        parse_s3_url(url, environ)
