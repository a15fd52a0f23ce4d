from __future__ import annotations

from .. import __version__
from .base import ApiHandler


class HealthHandler(ApiHandler):
    public = True

    async def get(self) -> None:
        self.write_json({"status": "ok", "version": __version__})
