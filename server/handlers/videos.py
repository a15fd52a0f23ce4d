"""A video's playable preview (`GET /images/{id}/video?variant=preview`), served as
originals and thumbnails are (files.FileHandler: Range, 206/416, ETag, 304, HEAD), with
a bearer token or a signed media URL (the Image's `signed_urls.video_preview`)."""

from __future__ import annotations

from .. import errors
from ..services.media_urls import Variant
from .files import IMMUTABLE, FileHandler

VARIANTS: dict[str, Variant] = {"preview": "video_preview"}


class VideoHandler(FileHandler):
    def variant(self) -> Variant | None:
        return VARIANTS.get(self.get_query_argument("variant", "preview"))

    async def get(self, image_id: str, include_body: bool = True) -> None:
        record = await self.services.library.get_kept(self.user, image_id)
        if self.variant() is None:
            raise errors.ApiError(errors.INVALID_ARGUMENT, "variant must be preview.")
        previews = self.services.previews
        path = await previews.file(record.blob)
        if path is None:
            raise errors.ApiError(errors.NO_VIDEO_PREVIEW)
        await self.send_file(previews.root, path, path.stem, include_body)

    async def head(self, image_id: str) -> None:
        await self.get(image_id, include_body=False)

    def get_content_type(self) -> str:
        return "video/mp4"

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", IMMUTABLE)
