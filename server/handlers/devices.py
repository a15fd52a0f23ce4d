"""The caller's devices: list them, and sign one out (revoke its token)."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..catalog import Device
from .base import ApiHandler

MAX_DEVICE_ID = 2**63 - 1


def device_json(device: Device, *, current: bool) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "created_at": device.created_at,
        "last_seen_at": device.last_seen_at,
        "current": current,
    }


def device_id(text: str) -> int:
    """A path's device id; anything that is not one is a device the caller lacks."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        raise errors.ApiError(errors.DEVICE_NOT_FOUND)
    if not 0 < int(text) <= MAX_DEVICE_ID:
        raise errors.ApiError(errors.DEVICE_NOT_FOUND)
    return int(text)


class DevicesHandler(ApiHandler):
    async def get(self) -> None:
        devices = await self.services.auth.devices(self.user)
        self.write_json(
            {"items": [device_json(d, current=d.id == self.device.id) for d in devices]}
        )


class DeviceHandler(ApiHandler):
    async def delete(self, raw_id: str) -> None:
        await self.services.auth.revoke(device_id(raw_id), self.user)
        self.set_status(204)
        self.finish()
