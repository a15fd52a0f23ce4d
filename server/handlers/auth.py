"""Turning a pairing code into a device token."""

from __future__ import annotations

from .. import errors
from .base import ApiHandler


class PairHandler(ApiHandler):
    public = True

    async def post(self) -> None:
        body = self.json_body()
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            code = f"{code:06d}"
        if not isinstance(code, str):
            raise errors.ApiError(errors.INVALID_ARGUMENT, "code must be the 6-digit pairing code.")
        device = body.get("device", "")
        if not isinstance(device, str):
            raise errors.ApiError(errors.INVALID_ARGUMENT, "device must be a name.")
        issued = await self.services.auth.pair(code.strip(), device)
        self.write_json(
            {
                "token": issued.token,
                "user": {"id": issued.user.id, "name": issued.user.name},
                "device": {"id": issued.device.id, "name": issued.device.name},
            }
        )
