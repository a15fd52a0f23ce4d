"""`python -m server` token and pair, and settings from the environment, as real processes."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import tornado.ioloop

from server.config import Settings
from server.services import build_services
from tests.server_cli import cli, environment, last_line

QR_BLOCKS = set("█▀▄ ")


def authenticates(io_loop: tornado.ioloop.IOLoop, data: Path, token: str) -> str | None:
    """The user this token belongs to, asked of the catalog in `data` itself."""

    async def ask() -> str | None:
        services = build_services(Settings(data=data))
        try:
            found = await services.auth.authenticate(token)
            return None if found is None else found[0].name
        finally:
            await services.close()

    return io_loop.run_sync(ask)


# token and pair ---------------------------------------------------------------


def test_token_prints_the_token_as_its_last_line(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    made = cli(
        "token", "--data", str(data), "--user", "dave", env=environment(TUBEI_DATA=str(elsewhere))
    )
    assert made.returncode == 0, made.stderr
    token = last_line(made.stdout)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", token), made.stdout
    assert (data / "catalog.sqlite3").exists()
    assert not elsewhere.exists()  # --data wins over TUBEI_DATA

    again = cli(
        "token", "--user", "dave", "--device", "laptop", env=environment(TUBEI_DATA=str(data))
    )
    assert again.returncode == 0, again.stderr
    second = last_line(again.stdout)
    assert second != token
    assert authenticates(io_loop, data, token) == "dave"
    assert authenticates(io_loop, data, second) == "dave"
    assert authenticates(io_loop, data, token[:-1]) is None


def test_pair_prints_a_code_a_link_and_a_qr_code(
    tmp_path: Path, io_loop: tornado.ioloop.IOLoop
) -> None:
    data = tmp_path / "data"
    args = ["pair", "--data", str(data), "--user", "carol", "--host", "127.0.0.1", "--port", "8123"]
    made = cli(*args)
    assert made.returncode == 0, made.stderr
    links = re.findall(r"tubei://pair\?\S+", made.stdout)
    assert len(links) == 1, made.stdout
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(links[0]).query)
    assert query["server"] == ["http://127.0.0.1:8123"]
    (code,) = query["code"]
    assert re.fullmatch(r"\d{6}", code)
    assert re.search(rf"\b{code}\b", made.stdout.replace(links[0], ""))
    qr_rows = [
        line for line in made.stdout.splitlines() if len(line) >= 21 and set(line) <= QR_BLOCKS
    ]
    assert len(qr_rows) >= 10, made.stdout
    assert any("█" in row for row in qr_rows)

    async def redeem() -> str:
        services = build_services(Settings(data=data))
        try:
            return (await services.auth.pair(code, "phone", address="127.0.0.1")).user.name
        finally:
            await services.close()

    assert io_loop.run_sync(redeem) == "carol"

    public = cli("pair", "--data", str(data), "--public-url", "https://photos.example/")
    assert public.returncode == 0, public.stderr
    (link,) = re.findall(r"tubei://pair\?\S+", public.stdout)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["server"] == ["https://photos.example"]
    assert query["code"] != [code]


def test_a_user_name_is_required(tmp_path: Path) -> None:
    for args in (["token", "--user", ""], ["token", "--user", "  "], ["pair", "--user", ""]):
        run = cli(*args, "--data", str(tmp_path / "data"))
        assert run.returncode == 2, args
        assert "not a user name" in run.stderr
        assert run.stdout == ""
    assert not (tmp_path / "data").exists()


# settings from the environment ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "args", "named"),
    [
        ({"TUBEI_PORT": "abc"}, ["--host", "127.0.0.1"], "TUBEI_PORT"),
        (
            {"TUBEI_MAX_UPLOAD_SIZE": "lots"},
            ["--host", "127.0.0.1", "--port", "0"],
            "TUBEI_MAX_UPLOAD_SIZE",
        ),
        ({}, ["--host", "127.0.0.1", "--port", "abc"], "--port"),
    ],
)
def test_a_malformed_setting_is_exit_2_naming_it(
    tmp_path: Path, extra: dict[str, str], args: list[str], named: str
) -> None:
    data = tmp_path / "data"
    run = cli("serve", "--data", str(data), *args, env=environment(**extra))
    assert run.returncode == 2
    assert named in run.stderr
    assert "Traceback" not in run.stderr
    assert not data.exists()  # refused before touching anything
