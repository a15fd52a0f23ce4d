"""Getting a device token: a pairing code, or a WeChat login; and which are on."""

from __future__ import annotations

import time
from typing import Any

from .. import errors
from ..catalog.records import iso
from ..services.auth import Issued
from .base import ApiHandler, client_address
from .devices import device_json


def issued_json(issued: Issued) -> dict[str, Any]:
    return {
        "token": issued.token,
        "user": {"id": issued.user.id, "name": issued.user.name},
        "device": device_json(issued.device, current=True),
    }


class LoginHandler(ApiHandler):
    public = True

    def device_name(self, body: dict[str, Any]) -> str:
        device = body.get("device", "")
        if not isinstance(device, str):
            raise errors.ApiError(errors.INVALID_ARGUMENT, "device must be a name.")
        return device


class MethodsHandler(ApiHandler):
    public = True

    async def get(self) -> None:
        self.write_json({"pair": True, "wechat": self.services.auth.wechat_enabled})


class PairHandler(LoginHandler):
    async def post(self) -> None:
        body = self.json_body()
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            code = f"{code:06d}"
        if not isinstance(code, str):
            raise errors.ApiError(errors.INVALID_ARGUMENT, "code must be the 6-digit pairing code.")
        device = self.device_name(body)
        issued = await self.services.auth.pair(
            code.strip(), device, address=client_address(self.request)
        )
        self.write_json(issued_json(issued))


class WeChatLoginHandler(LoginHandler):
    async def post(self) -> None:
        if not self.services.auth.wechat_enabled:
            raise errors.ApiError(errors.WECHAT_LOGIN_DISABLED)
        body = self.json_body()
        code = body.get("code")
        if not isinstance(code, str) or not code.strip():
            raise errors.ApiError(errors.INVALID_ARGUMENT, "code must be the code from wx.login.")
        device = self.device_name(body)
        issued = await self.services.auth.wechat_login(
            code.strip(), device, address=client_address(self.request)
        )
        self.write_json(issued_json(issued))


class PairingCodesHandler(ApiHandler):
    """A one-time code that signs another device (a browser) in as the caller's user."""

    async def post(self) -> None:
        pairing = await self.services.auth.pairing_code_for(self.user)
        self.write_json(
            {
                "code": pairing.code,
                "expires_at": iso(pairing.expires_at),
                "expires_in": max(0, round(pairing.expires_at - time.time())),
                "user": {"id": pairing.user.id, "name": pairing.user.name},
            },
            status=201,
        )
