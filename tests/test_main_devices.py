"""`python -m server devices` and `revoke`, run as real processes, beside a running server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.server_cli import cli, environment, free_port, last_line, request, serving


def token_for(data: Path, user: str, device: str) -> str:
    made = cli("token", "--data", str(data), "--user", user, "--device", device)
    assert made.returncode == 0, made.stderr
    return last_line(made.stdout)


def listed(data: Path, *args: str) -> list[list[str]]:
    run = cli("devices", "--data", str(data), *args)
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    assert header.split() == ["id", "user", "device", "created", "last", "seen"]
    return [row.split() for row in rows]


def test_devices_are_listed_and_revoked_from_the_shell_while_serving(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    with serving(tmp_path, flags, environment(), port) as server:
        phone = token_for(data, "mum", "phone")
        tablet = token_for(data, "mum", "tablet")
        laptop = token_for(data, "dad", "laptop")
        server.call("/images", phone)  # seen

        rows = listed(data)
        assert [(r[1], r[2]) for r in rows] == [
            ("mum", "phone"),
            ("mum", "tablet"),
            ("dad", "laptop"),
        ]
        assert rows[1][-1] == "never" and rows[0][-1] != "never"
        assert [r[2] for r in listed(data, "--user", "dad")] == ["laptop"]
        nobody = cli("devices", "--data", str(data), "--user", "nobody")
        assert nobody.returncode == 1 and "nobody" in nobody.stderr

        tablet_id = rows[1][0]
        revoked = cli("revoke", "--data", str(data), tablet_id)
        assert revoked.returncode == 0, revoked.stderr
        assert f"revoked device {tablet_id} (tablet)" in revoked.stdout
        # The running server refuses the token at once, and only that one.
        status, _, body = request(
            server.url + "/images", headers={"Authorization": f"Bearer {tablet}"}
        )
        assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
        server.call("/images", phone)
        server.call("/images", laptop)
        assert [r[2] for r in listed(data, "--user", "mum")] == ["phone"]
        devices = server.call("/devices", phone)
        assert [d["name"] for d in devices["items"]] == ["phone"]

        again = cli("revoke", "--data", str(data), tablet_id)
        assert again.returncode == 1 and f"no device {tablet_id}" in again.stderr
        assert server.stop() == 0


def test_revoke_wants_a_device_id(tmp_path: Path) -> None:
    for bad in ("abc", "0", "-3", "1.5", ""):
        run = cli("revoke", "--data", str(tmp_path / "data"), bad)
        assert run.returncode == 2, bad
        assert "device id" in run.stderr or "arguments" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    missing = cli("revoke", "--data", str(tmp_path / "data"))
    assert missing.returncode == 2 and "device_id" in missing.stderr
