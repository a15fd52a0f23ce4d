"""A deployment loads the client library of a backend only when it uses that backend:
the S3 client (aiobotocore, botocore, aiohttp) costs a process some 18 MiB and 0.3 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import asyncio, json, sys
from pathlib import Path
from server.config import Settings
from server.services import build_services

settings = Settings(data=Path(sys.argv[1]), blobs=sys.argv[2])
services = build_services(settings)
asyncio.run(services.close())
print(json.dumps(sorted(m for m in ("aiobotocore", "botocore", "aiohttp") if m in sys.modules)))
"""


def loaded(tmp_path: Path, blobs: str) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TUBEI_S3_ACCESS_KEY_ID": "key",
        "TUBEI_S3_SECRET_ACCESS_KEY": "secret",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data"), blobs],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(
    ("blobs", "expected"),
    [
        ("", []),
        ("s3://photos/t?endpoint=http://127.0.0.1:9", ["aiobotocore", "aiohttp", "botocore"]),
    ],
)
def test_the_s3_client_is_loaded_only_with_object_storage(
    tmp_path: Path, blobs: str, expected: list[str]
) -> None:
    assert loaded(tmp_path, blobs) == expected
