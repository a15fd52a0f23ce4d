"""The seed's API, kept working: `/api/v1/service/image`.

The first Tubei was a Django view and a three-button page. Its client sends
`wx.uploadFile({name: 'test'})`, fetches `?md5=` and deletes `?md5=`, and reads
`{"result_code", "message", "data"}`. It stored files as `<md5>.jpg` and joined
the md5 into a path; here the md5 is only ever a catalog lookup.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web

from .. import errors
from .files import OriginalFileMixin
from .uploading import UploadMixin

OK = 0
NOT_FOUND = -1
BAD_INPUT = -101
UNAUTHORIZED = -500
SERVER_ERROR = -2


def result_code(status: int) -> int:
    if status in (401, 403):
        return UNAUTHORIZED
    if status == 404:
        return NOT_FOUND
    if status >= 500 or status == 410:  # 410: the stored photo is damaged
        return SERVER_ERROR
    return BAD_INPUT


def envelope(code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"result_code": code, "message": message, "data": data}


@tornado.web.stream_request_body
class SeedImageHandler(UploadMixin, OriginalFileMixin):
    transport = "seed"

    def error_body(self, error: errors.ApiError) -> dict[str, Any]:
        return {**envelope(result_code(error.status), error.message), **error.to_json()}

    def reply(self, message: str, data: Any = None) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(envelope(OK, message, data), ensure_ascii=False))

    def md5_argument(self) -> str:
        md5 = self.get_query_argument("md5", None)
        if md5 is None:
            raise errors.ApiError(errors.INVALID_MD5, "The md5 query parameter is required.")
        return md5

    async def get(self, include_body: bool = True) -> None:  # type: ignore[override]
        record = await self.services.library.find_by_md5(self.user, self.md5_argument())
        await self.send_original(record, include_body)

    async def head(self) -> None:  # type: ignore[override]
        await self.get(include_body=False)

    async def post(self) -> None:
        result = await self.receive()
        data = [{"name": i.field, "md5": i.image.blob.md5} for i in result.ingested]
        self.reply("upload success", data)

    async def delete(self) -> None:
        record = await self.services.library.find_by_md5(self.user, self.md5_argument())
        await self.services.library.trash(self.user, record.sha256)
        self.reply("delete success", {"md5": record.blob.md5})
