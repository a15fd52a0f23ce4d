"""The library: list, its months, upload, check, one image, delete to the trash."""

from __future__ import annotations

from typing import Any

import tornado.web

from .. import errors
from ..services.cursors import SHA256_RE, Month
from ..services.ingest import Result
from ..services.library import DEFAULT_PAGE, MAX_CHECK, MAX_PAGE, MD5_RE, Page
from ..services.media_urls import UserSigner
from ..views import image_json
from .base import ApiHandler
from .uploading import UploadMixin

HEX_DIGITS = {"sha256": 64, "md5": 32}


def page_json(page: Page, signer: UserSigner) -> dict[str, Any]:
    return {
        "items": [image_json(r, signer=signer) for r in page.items],
        "next_cursor": page.next_cursor,
    }


def months_json(months: list[Month]) -> dict[str, Any]:
    return {
        "total": sum(m.count for m in months),
        "months": [{"month": m.month, "count": m.count, "cursor": m.cursor} for m in months],
    }


def upload_json(result: Result, signer: UserSigner) -> dict[str, Any]:
    body: dict[str, Any] = {
        "items": [
            image_json(i.image, signer=signer, duplicate=i.duplicate, field=i.field)
            for i in result.ingested
        ]
    }
    if result.rejected:
        body["rejected"] = [
            {"field": r.field, "filename": r.filename, **r.error.to_json()} for r in result.rejected
        ]
    return body


@tornado.web.stream_request_body
class ImagesHandler(UploadMixin):
    async def get(self) -> None:
        limit = self.query_int("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        cursor = self.get_query_argument("cursor", None)
        page = await self.services.library.page(self.user, limit, cursor)
        self.write_json(page_json(page, await self.signer()))

    async def post(self) -> None:
        result = await self.receive()
        self.write_json(upload_json(result, await self.signer()))


class TimelineHandler(ApiHandler):
    """The library's shape: its months, newest first, each with its count and the
    cursor of `GET /images` that lists from its newest photo."""

    async def get(self) -> None:
        self.write_json(months_json(await self.services.library.months(self.user)))


class CheckHandler(ApiHandler):
    async def post(self) -> None:
        body = self.json_body()
        fields = [f for f in ("sha256", "md5") if f in body]
        if len(fields) != 1:
            raise errors.ApiError(
                errors.INVALID_ARGUMENT, "Send exactly one of sha256 or md5, each a list."
            )
        field = fields[0]
        values = body[field]
        pattern = SHA256_RE if field == "sha256" else MD5_RE
        if not isinstance(values, list) or len(values) > MAX_CHECK:
            raise errors.ApiError(
                errors.INVALID_ARGUMENT, f"{field} must be a list of at most {MAX_CHECK} hashes."
            )
        if not all(isinstance(v, str) and pattern.match(v.lower()) for v in values):
            raise errors.ApiError(
                errors.INVALID_ARGUMENT,
                f"Every {field} must be {HEX_DIGITS[field]} hexadecimal digits.",
            )
        wanted = [v.lower() for v in values]
        present = await self.services.library.present(self.user, field, wanted)
        self.write_json(
            {
                "present": [v for v in dict.fromkeys(wanted) if v in present],
                "missing": [v for v in dict.fromkeys(wanted) if v not in present],
            }
        )


class ImageHandler(ApiHandler):
    async def get(self, image_id: str) -> None:
        record = await self.services.library.get(self.user, image_id)
        self.write_json(image_json(record, signer=await self.signer()))

    async def delete(self, image_id: str) -> None:
        record = await self.services.library.trash(self.user, image_id)
        self.write_json(image_json(record, signer=await self.signer()))


class TrashHandler(ApiHandler):
    async def get(self) -> None:
        limit = self.query_int("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        cursor = self.get_query_argument("cursor", None)
        page = await self.services.library.page(self.user, limit, cursor, trashed=True)
        self.write_json(page_json(page, await self.signer()))


class TrashItemHandler(ApiHandler):
    async def get(self, image_id: str) -> None:
        record = await self.services.library.get(self.user, image_id, trashed=True)
        self.write_json(image_json(record, signer=await self.signer()))

    async def delete(self, image_id: str) -> None:
        await self.services.library.purge(self.user, image_id)
        self.set_status(204)
        self.finish()


class RestoreHandler(ApiHandler):
    async def post(self, image_id: str) -> None:
        record = await self.services.library.restore(self.user, image_id)
        self.write_json(image_json(record, signer=await self.signer()))
