"""`python -m server` with --blobs: a malformed URL or missing credentials is exit 2
naming the setting; a store that cannot be reached at start-up is one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server_cli import cli, environment, free_port

KEYS = {"TUBEI_S3_ACCESS_KEY_ID": "tubei", "TUBEI_S3_SECRET_ACCESS_KEY": "very-secret"}


@pytest.mark.parametrize(
    ("url", "env", "says"),
    [
        ("s3://photos?endpoint=http://127.0.0.1:1", {}, "no S3 credentials"),
        ("s3://Photos", KEYS, "is not a bucket name"),
        ("ftp://photos", KEYS, "is not file:///absolute/folder or s3://"),
    ],
)
def test_a_bad_blobs_setting_is_exit_2_naming_it(
    tmp_path: Path, url: str, env: dict[str, str], says: str
) -> None:
    run = cli("serve", "--data", str(tmp_path), "--blobs", url, env=environment(**env))
    assert run.returncode == 2, run.stderr
    assert "--blobs" in run.stderr and says in run.stderr
    by_env = cli(
        "token", "--data", str(tmp_path), "--user", "mum", env=environment(TUBEI_BLOBS=url, **env)
    )
    assert by_env.returncode == 2 and "TUBEI_BLOBS" in by_env.stderr


def test_an_unreachable_store_at_start_up_is_exit_1(tmp_path: Path) -> None:
    url = f"s3://photos/tubei?endpoint=http://127.0.0.1:{free_port()}"
    run = cli(
        "serve",
        "--data",
        str(tmp_path),
        "--port",
        str(free_port()),
        "--blobs",
        url,
        env=environment(**KEYS),
    )
    assert run.returncode == 1, run.stderr
    assert "object storage unavailable" in run.stderr and "very-secret" not in run.stderr
