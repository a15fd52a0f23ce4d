"""`serve --catalog postgresql://...`: a real server process on a real PostgreSQL.

The server reaches PostgreSQL through a TCP relay the test can cut, as a network
failure or a database restart would: requests that need the catalog are answered 503
`backend_unavailable` with Retry-After, nothing of them is written, what needs no
catalog goes on being served, and the server recovers once the database is back.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import psycopg
import pytest

from tests import postgres_server
from tests.conftest import multipart, unique_jpeg
from tests.server_cli import Server, cli, environment, free_port, last_line, request, serving
from tests.tcp_relay import TcpRelay

pytestmark = pytest.mark.skipif(
    postgres_server.problem() is not None, reason=str(postgres_server.problem())
)


def via(url: str, port: int) -> str:
    return url.replace(f"{postgres_server.HOST}:{postgres_server.PORT}", f"127.0.0.1:{port}")


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def tus_upload(server: Server, token: str, body: bytes, filename: str) -> tuple[int, int]:
    """Create a tus upload and send it whole: (status of the creation, of the PATCH)."""
    name = base64.b64encode(filename.encode()).decode()
    status, headers, _ = request(
        server.url + "/uploads/",
        "POST",
        b"",
        auth(
            token,
            **{
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(len(body)),
                "Upload-Metadata": f"filename {name}",
            },
        ),
    )
    if status != 201:
        return status, 0
    location = headers["Location"]
    url = location if location.startswith("http") else f"http://127.0.0.1:{server.port}{location}"
    patched, _, _ = request(
        url,
        "PATCH",
        body,
        auth(
            token,
            **{
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        ),
    )
    return status, patched


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def test_serve_on_postgresql_round_trip_outage_and_recovery(
    tmp_path: Path, postgres_url: str
) -> None:
    data, port = tmp_path / "data", free_port()
    with TcpRelay((postgres_server.HOST, postgres_server.PORT)) as relay:
        catalog = via(postgres_url, relay.port)
        made = cli("token", "--data", str(data), "--catalog", catalog, "--user", "mum")
        assert made.returncode == 0, made.stderr
        token = last_line(made.stdout)
        flags = ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
        env = environment(TUBEI_CATALOG=catalog, TUBEI_CATALOG_TIMEOUT="1")
        with serving(tmp_path, flags, env, port) as server:
            # upload, list, trash, tus: the catalog is PostgreSQL's
            first = server.upload(token, [("file", "first.jpg", unique_jpeg())])["items"][0]
            second = server.upload(token, [("file", "second.jpg", unique_jpeg())])["items"][0]
            listed = server.call("/images", token)["items"]
            assert {image["id"] for image in listed} == {first["id"], second["id"]}
            server.call(f"/images/{second['id']}", token, "DELETE")
            assert [i["id"] for i in server.call("/images", token)["items"]] == [first["id"]]
            assert [i["id"] for i in server.call("/trash", token)["items"]] == [second["id"]]
            assert tus_upload(server, token, unique_jpeg(), "resumed.jpg") == (201, 204)
            names = {i["filename"] for i in server.call("/images", token)["items"]}
            assert names == {"first.jpg", "resumed.jpg"}
            entries, uploads = count(postgres_url, "entries"), count(postgres_url, "uploads")

            relay.cut()
            status, headers, body = request(server.url + "/images", headers=auth(token))
            assert status == 503, body
            assert json.loads(body)["error"]["code"] == "backend_unavailable"
            assert int(headers["Retry-After"]) > 0
            lost_body, content_type = multipart([("file", "lost.jpg", unique_jpeg())])
            status, _, body = request(
                server.url + "/images",
                "POST",
                lost_body,
                auth(token, **{"Content-Type": content_type}),
            )
            assert status == 503, body
            assert tus_upload(server, token, unique_jpeg(), "lost-tus.jpg")[0] == 503
            # What needs no catalog is still served.
            status, _, body = request(server.url + "/health")
            assert status == 200 and json.loads(body)["status"] == "ok"
            # Nothing half-written: the database holds what it held.
            assert count(postgres_url, "entries") == entries
            assert count(postgres_url, "uploads") == uploads

            relay.restore()
            deadline = time.monotonic() + 20
            while True:
                status, _, body = request(server.url + "/images", headers=auth(token))
                if status == 200:
                    break
                assert status == 503 and time.monotonic() < deadline, body
                time.sleep(0.2)
            names = {i["filename"] for i in json.loads(body)["items"]}
            assert names == {"first.jpg", "resumed.jpg"}
            third = server.upload(token, [("file", "third.jpg", unique_jpeg())])["items"][0]
            assert third["filename"] == "third.jpg"
            assert "Traceback" not in server.log.read_text()
            assert server.stop() == 0


@pytest.mark.parametrize(
    "url",
    ["mysql://db/tubei", "postgresql://host:99999/tubei", "postgresql://host/", "sqlite://rel"],
)
def test_a_malformed_catalog_url_is_exit_2_naming_the_setting(tmp_path: Path, url: str) -> None:
    run = cli("serve", "--data", str(tmp_path), "--catalog", url)
    assert run.returncode == 2
    assert "--catalog" in run.stderr
    by_env = cli(
        "token", "--data", str(tmp_path), "--user", "mum", env=environment(TUBEI_CATALOG=url)
    )
    assert by_env.returncode == 2
    assert "TUBEI_CATALOG" in by_env.stderr


def test_an_unreachable_catalog_at_start_up_is_one_line_and_exit_1(tmp_path: Path) -> None:
    nowhere = f"postgresql://tubei:secret@127.0.0.1:{free_port()}/tubei"
    args = ["--data", str(tmp_path), "--catalog", nowhere, "--catalog-timeout", "1"]
    for command in (["serve", "--port", str(free_port())], ["token", "--user", "mum"]):
        run = cli(*command, *args)
        assert run.returncode == 1, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1, run.stderr
        assert "cannot reach the catalog at" in lines[0] and "secret" not in lines[0]


def test_servers_on_postgresql_share_one_data_folder(tmp_path: Path, postgres_url: str) -> None:
    """PostgreSQL arbitrates between processes: a second server on the folder starts and
    sees what the first stored; maintenance that moves files still wants it alone."""
    data = tmp_path / "data"
    made = cli("token", "--data", str(data), "--catalog", postgres_url, "--user", "mum")
    assert made.returncode == 0, made.stderr
    token = last_line(made.stdout)
    env = environment(TUBEI_CATALOG=postgres_url, TUBEI_DATA=str(data))
    first_port, second_port = free_port(), free_port()
    with (
        serving(tmp_path, ["--host", "127.0.0.1", "--port", str(first_port)], env, first_port) as a,
        serving(
            tmp_path, ["--host", "127.0.0.1", "--port", str(second_port)], env, second_port
        ) as b,
    ):
        sent = a.upload(token, [("file", "shared.jpg", unique_jpeg())])["items"][0]
        assert [i["id"] for i in b.call("/images", token)["items"]] == [sent["id"]]
        status, body = b.fetch(f"/images/{sent['sha256']}/original", token)
        assert status == 200 and len(body) == sent["size"]
        for command in (["gc"], ["scrub", "--repair"]):
            refused = cli(*command, "--data", str(data), env=env)
            assert refused.returncode == 2, refused.stderr
            assert "another Tubei server is using" in refused.stderr
        assert a.stop() == 0 and b.stop() == 0


def test_a_second_server_on_a_sqlite_folder_still_refuses(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    with serving(
        tmp_path,
        ["--host", "127.0.0.1", "--port", str(port), "--data", str(data)],
        environment(),
        port,
    ) as first:
        second = cli(
            "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data", str(data)
        )
        assert second.returncode == 2
        assert f"another Tubei server is using {data}" in second.stderr
        assert first.stop() == 0
