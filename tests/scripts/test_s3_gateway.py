"""scripts/s3-gateway: start, env and stop, as a developer runs them."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "s3-gateway"


def gateway(command: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUBEI_S3_GATEWAY_STATE": str(state)}
    return subprocess.run(
        [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=300
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def status(url: str) -> int:
    """The HTTP status of an anonymous GET (S3 answers with a refusal of its own)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def test_start_env_stop(tmp_path: Path) -> None:
    state = tmp_path / "gateway.json"
    started = gateway("start", state)
    if started.returncode and "S3 gateway unavailable" in started.stderr:
        pytest.skip(started.stderr.strip())
    try:
        assert started.returncode == 0, started.stderr
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
        )
        assert set(exports) == {
            "TUBEI_S3_ENDPOINT",
            "TUBEI_S3_ACCESS_KEY_ID",
            "TUBEI_S3_SECRET_ACCESS_KEY",
        }
        assert exports["TUBEI_S3_ENDPOINT"].startswith("http://127.0.0.1:")
        assert status(exports["TUBEI_S3_ENDPOINT"] + "/some-bucket") in (403, 404)
        assert gateway("env", state).stdout == started.stdout
        again = gateway("start", state)
        assert again.returncode == 1 and "running already" in again.stderr
        running = json.loads(state.read_text())
    finally:
        stopped = gateway("stop", state)
    assert stopped.returncode == 0, stopped.stderr
    assert not state.exists()
    assert not Path(running["root"]).exists()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in running["pids"].values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in running["pids"].values())
    assert gateway("stop", state).returncode == 1  # nothing left to stop
