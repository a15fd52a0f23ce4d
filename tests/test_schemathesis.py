"""schemathesis fuzzes a live server against server/openapi.json.

A real `python -m server serve` on a free loopback port, a temp data folder, tokens
from `python -m server token`, a small library to find (a photo, one in the trash,
one that cannot be decoded, unfinished tus uploads), and then `st run` over every
operation of the spec: every answer must be no server error, have a documented
status, content type and headers, and match its schema. Half the cases of an
operation that takes an id use one that exists, so that answers with bodies are
checked too, not only 404s. Generation is deterministic (the same cases every run)
and bounded: about half a minute on two cores. Nothing but the loopback is called.

Left out: `GET /events`, a WebSocket, which an HTTP fuzzer cannot open (its own tests
are tests/handlers/test_events.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.views import API
from tests.conftest import jpeg_bytes, multipart
from tests.handlers.helpers import png_chunk
from tests.server_cli import ROOT, Server, cli, environment, free_port, last_line, request, serving

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",  # no or a bad token is a 401 wherever the spec asks for one
    "unsupported_method",  # other methods are a 405 with Allow
    "allow_header_conformance",
    "ensure_resource_availability",  # what was created is there
]
# Not run: positive_data_acceptance, negative_data_rejection, missing_required_header
# and use_after_free judge by generic rules that the protocols here overrule: tus
# answers a missing Tus-Resumable with 412 and OPTIONS on any upload URL, a deleted
# one's too; a well-formed cursor or file can still be refused (400, 415).
MAX_EXAMPLES = 30
SPEC_FILE = ROOT / "server" / "openapi.json"
OPERATION_IDS = [
    operation["operationId"]
    for item in json.loads(SPEC_FILE.read_text())["paths"].values()
    for method, operation in item.items()
    if method in ("get", "head", "post", "put", "patch", "delete", "options")
]
# Operations whose `{id}` is an image's: half their cases use an id that exists.
IMAGE_OPERATIONS = [
    "getImage",
    "trashImage",
    "getOriginal",
    "headOriginal",
    "getThumbnail",
    "headThumbnail",
    "getVideo",
    "headVideo",
    "getTrashed",
    "purgeTrashed",
    "restoreTrashed",
]
SEED_OPERATIONS = ["getSeedImage", "headSeedImage", "seedDelete"]
LIST_OPERATIONS = ["listImages", "listTrash"]
UPLOAD_OPERATIONS = [
    "tusUploadOptions",
    "headUpload",
    "patchUpload",
    "deleteUpload",
    "overrideUpload",
]
# A PNG's signature and header, then garbage: kept, but it has no thumbnail.
UNDECODABLE = (
    b"\x89PNG\r\n\x1a\n"
    + png_chunk(b"IHDR", (64).to_bytes(4, "big") + (48).to_bytes(4, "big") + b"\x08\x02\0\0\0")
    + b"not pixels" * 16
)


def token(data: Path, user: str) -> str:
    made = cli("token", "--data", str(data), "--user", user, "--device", "schemathesis")
    assert made.returncode == 0, made.stderr
    return last_line(made.stdout)


def call(
    server: Server, path: str, token: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], Any]:
    body = b"" if method == "POST" else None
    status, answer_headers, answer = request(
        server.url + path, method, body, {"Authorization": f"Bearer {token}", **headers}
    )
    return status, answer_headers, json.loads(answer) if answer else None


def upload(server: Server, token: str, name: str, data: bytes) -> dict[str, Any]:
    body, content_type = multipart([("photo", name, data)])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    status, _, answer = request(server.url + "/images", "POST", body, headers)
    assert status == 200, answer
    item: dict[str, Any] = json.loads(answer)["items"][0]
    return item


def toml(value: Any) -> str:
    """The few TOML values the config needs (JSON strings are TOML basic strings)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return json.dumps(value)


def operation(ids: list[str], **settings: Any) -> str:
    lines = ["[[operations]]", f"include-operation-id = {toml(ids)}"]
    lines += [f"{key} = {toml(value)}" for key, value in settings.items()]
    return "\n".join(lines)


def bound(parameter: str, dictionary: str) -> dict[str, Any]:
    return {parameter: {"dictionary": dictionary, "probability": 0.5}}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Server]:
    data, port = tmp_path / "data", free_port()
    args = ["--data", str(data), "--host", "127.0.0.1", "--port", str(port)]
    with serving(tmp_path, args, environment(TUBEI_LOG_LEVEL="error"), port) as server:
        yield server


def test_schemathesis_finds_nothing_wrong(live: Server, tmp_path: Path) -> None:
    named = [*IMAGE_OPERATIONS, *SEED_OPERATIONS, *LIST_OPERATIONS, *UPLOAD_OPERATIONS]
    assert set(named) <= set(OPERATION_IDS)  # a renamed operation would lose its data
    data = tmp_path / "data"
    fuzz = token(data, "fuzz")
    # DELETE /devices/{id} runs as another person, with their first token, so that it
    # can sign out only their devices (the second is in its dictionary), never the
    # token that everything else runs with.
    victim, spare = token(data, "victim"), token(data, "victim")
    _, _, devices = call(live, "/devices", spare)
    spare_device = next(d["id"] for d in devices["items"] if d["current"])

    # The same bytes every run, so that the same cases are generated every run.
    kept = upload(live, fuzz, "kept.jpg", jpeg_bytes(color=(10, 20, 30)))
    trashed = upload(live, fuzz, "trashed.jpg", jpeg_bytes(color=(40, 50, 60)))
    undecodable = upload(live, fuzz, "undecodable.png", UNDECODABLE)
    status, _, _ = call(live, f"/images/{trashed['id']}", fuzz, "DELETE")
    assert status == 200
    assert not undecodable["thumbnail"]
    unfinished = []
    for _ in range(3):
        status, headers, _ = call(
            live, "/uploads/", fuzz, "POST", **{"Tus-Resumable": "1.0.0", "Upload-Length": "4096"}
        )
        assert status == 201
        unfinished.append(headers["Location"].rsplit("/", 1)[1])

    _, _, page = call(live, "/images?limit=1", fuzz)
    cursor = page["next_cursor"]
    assert cursor is not None

    images = [kept["id"], trashed["id"], undecodable["id"]]
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "\n".join(
            [
                'hooks = "tests.schemathesis_hooks"',
                f"headers = {toml({'Authorization': f'Bearer {fuzz}'})}",
                "[dictionaries.images]",
                f"values = {toml(images)}",
                "[dictionaries.md5s]",
                f"values = {toml([kept['md5'], trashed['md5'], undecodable['md5']])}",
                "[dictionaries.cursors]",
                f"values = {toml([cursor])}",
                "[dictionaries.uploads]",
                f"values = {toml(unfinished)}",
                "[dictionaries.devices]",
                f"values = {toml([str(spare_device)])}",
                operation(IMAGE_OPERATIONS, parameters=bound("path.id", "images")),
                operation(SEED_OPERATIONS, parameters=bound("query.md5", "md5s")),
                operation(LIST_OPERATIONS, parameters=bound("query.cursor", "cursors")),
                operation(UPLOAD_OPERATIONS, parameters=bound("path.id", "uploads")),
                operation(
                    ["revokeDevice"],
                    headers={"Authorization": f"Bearer {victim}"},
                    parameters=bound("path.id", "devices"),
                ),
                "",
            ]
        )
    )
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"),
        # From the file (the served copy is the same, tests/test_openapi.py): loaded from
        # the server, schemathesis would leave GET /openapi.json itself out.
        str(SPEC_FILE),
        *("--url", f"http://127.0.0.1:{live.port}{API}"),
        *("--checks", ",".join(CHECKS)),
        *("--exclude-path", "/events"),  # a WebSocket: see the module's docstring
        *("--max-examples", str(MAX_EXAMPLES)),
        "--generation-deterministic",
        *("--workers", "1"),
        *("--request-timeout", "10"),
        "--no-color",
    ]
    started = time.monotonic()
    run = subprocess.run(
        command,
        cwd=tmp_path,  # whatever it leaves behind stays out of the work tree
        env=environment(PYTHONPATH=str(ROOT), COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = time.monotonic() - started
    report = run.stdout + run.stderr
    if run.returncode != 0:
        pytest.fail(f"schemathesis exited {run.returncode}:\n{report}", pytrace=False)
    # Every operation of the spec but the WebSocket was run.
    assert f"Tested: {len(OPERATION_IDS) - 1}\n" in report, report
    print(f"schemathesis took {took:.1f}s\n{report}")
    server_log = live.log.read_text()
    assert " ERROR " not in server_log, server_log
