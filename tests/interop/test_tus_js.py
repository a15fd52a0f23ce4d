"""tus-js-client, the official JavaScript tus client, under Node against a real server.

The client runs as a Node process (tests/interop/tus_js_upload.mjs) while the test's
event loop serves it. `npm ci` installs it; scripts/test runs that before pytest, so
these tests skip only where it was never run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from tests.conftest import Api
from tests.handlers.helpers import API, files_in, sha256
from tests.interop.conftest import Photo

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("tus_js_upload.mjs")
UPLOADS = f"{API}/uploads"
CHUNK = 512 * 1024

pytestmark = pytest.mark.skipif(
    not (ROOT / "node_modules" / "tus-js-client").is_dir(),
    reason="tus-js-client is not installed: run `npm ci` (scripts/test does)",
)


async def tus_js(api: Api, photo: Photo, *args: str) -> dict[str, Any]:
    """Run the Node client; its one-line JSON report."""
    assert api.token is not None
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        api.base_url + UPLOADS + "/",
        str(photo.path),
        str(CHUNK),
        *args,
        cwd=ROOT,
        env={**os.environ, "TUBEI_TOKEN": api.token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert len(lines) == 1, (lines, err.decode())
    report: dict[str, Any] = json.loads(lines[0])
    return report


async def assert_in_library(api: Api, data: bytes, filename: str) -> None:
    code, item = await api.json(f"{API}/images/{sha256(data)}")
    assert code == 200, item
    assert (item["filename"], item["size"]) == (filename, len(data))
    assert item["md5"] == hashlib.md5(data).hexdigest()
    original = await api.fetch(f"{API}/images/{sha256(data)}/original")
    assert original.body == data


@pytest.mark.gen_test(timeout=60)
async def test_tus_js_client_stops_midway_and_resumes_from_the_url(
    api: Api, settings: Settings, big_jpeg: Photo
) -> None:
    stopped = await tus_js(api, big_jpeg, "abort-after", str(2 * CHUNK))
    assert stopped["state"] == "aborted"
    assert stopped["offset"] == 2 * CHUNK
    url = stopped["url"]
    assert url.startswith(api.base_url + UPLOADS + "/")
    described = await api.fetch(url, "HEAD", None, {"Tus-Resumable": "1.0.0"})
    assert described.headers["Upload-Offset"] == str(2 * CHUNK)
    assert described.headers["Upload-Length"] == str(len(big_jpeg.data))

    done = await tus_js(api, big_jpeg, "resume", url)
    assert done == {
        "state": "done",
        "url": url,
        "offset": len(big_jpeg.data),
        "imageId": sha256(big_jpeg.data),
        "duplicate": False,
    }
    await assert_in_library(api, big_jpeg.data, big_jpeg.path.name)
    assert files_in(settings.tmp_dir) == []

    # Resuming a finished upload: the client learns the outcome from HEAD alone.
    again = await tus_js(api, big_jpeg, "resume", url)
    assert (again["state"], again["imageId"]) == ("done", sha256(big_jpeg.data))


@pytest.mark.gen_test(timeout=60)
async def test_tus_js_client_with_the_method_override_and_data_in_the_creation(
    api: Api, big_jpeg: Photo
) -> None:
    done = await tus_js(api, big_jpeg, "upload", "--override-patch", "--data-during-creation")
    assert done["state"] == "done"
    assert done["imageId"] == sha256(big_jpeg.data)
    assert done["duplicate"] is False
    await assert_in_library(api, big_jpeg.data, big_jpeg.path.name)

    again = await tus_js(api, big_jpeg, "upload")
    assert (again["imageId"], again["duplicate"]) == (sha256(big_jpeg.data), True)
    assert again["url"] != done["url"]
