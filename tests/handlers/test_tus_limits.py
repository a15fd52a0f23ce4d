"""tus creation under a budget, against a real `serve`: a flood of creations from one
token is refused with 429 past --max-open-uploads, and the catalog stays small."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

import tornado.httpclient

from tests.serve_process import API, serving


def test_a_creation_flood_is_refused_past_the_cap_and_the_catalog_stays_small(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--max-open-uploads", "50") as served:
        token = served.token()
        # 16 KiB of metadata each, as in the finding.
        metadata = "filename " + base64.b64encode(os.urandom(12_000)).decode()
        assert len(metadata) <= 16 * 1024

        async def flood() -> list[tornado.httpclient.HTTPResponse]:
            client = tornado.httpclient.AsyncHTTPClient()
            answers = []
            for _ in range(120):
                answers.append(
                    await client.fetch(
                        served.url + f"{API}/uploads/",
                        method="POST",
                        body=b"",
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Tus-Resumable": "1.0.0",
                            "Upload-Length": "1000000",
                            "Upload-Metadata": metadata,
                        },
                        raise_error=False,
                    )
                )
            client.close()
            return answers

        answers = asyncio.run(flood())
        catalog = sum(p.stat().st_size for p in served.data.glob("catalog.sqlite3*"))
        health = served.health("127.0.8.1")
    codes = [a.code for a in answers]
    assert codes == [201] * 50 + [429] * 70
    refused = answers[-1]
    assert json.loads(refused.body)["error"]["code"] == "too_many_uploads"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    print(f"tus flood: catalog {catalog / 1024**2:.1f} MiB after 120 creations")
    assert catalog < 8 * 1024**2  # 50 rows of 16 KiB, and the WAL
    assert health == 200
