"""`GET /api/v1/openapi.json`: the API's OpenAPI 3.1 description, as committed.

`server/openapi.json` is the one source; tests/test_openapi.py holds it against the
route table, and tests/test_schemathesis.py against a live server.
"""

from __future__ import annotations

from importlib import resources

from .base import ApiHandler

# Read once, at start-up: the document is part of the release, not of the data.
SPEC = resources.files("server").joinpath("openapi.json").read_bytes()


class OpenApiHandler(ApiHandler):
    public = True

    async def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(SPEC)
