"""A video's playable files (`GET /images/{id}/video?variant=...`), served as originals
and thumbnails are (files.FileHandler: Range, 206/416, ETag, 304, HEAD), with a bearer
token or a signed media URL (the Image's `signed_urls`):

- `preview`: a video's playable preview (`signed_urls.video_preview`), a file of its own;
- `motion`: a motion photo's video part (`signed_urls.motion_video`), the MP4 inside its
  one original, served as a file of its own from that byte range (local file or store).
"""

from __future__ import annotations

from pathlib import PurePath

from .. import errors
from ..catalog import ImageRecord
from ..services.media_urls import Variant
from .files import IMMUTABLE, OriginalFileMixin, content_disposition

VARIANTS: dict[str, Variant] = {"preview": "video_preview", "motion": "motion_video"}


class VideoHandler(OriginalFileMixin):
    motion: ImageRecord | None = None

    def variant(self) -> Variant | None:
        return VARIANTS.get(self.get_query_argument("variant", "preview"))

    async def get(self, image_id: str, include_body: bool = True) -> None:
        record = await self.services.library.get_kept(self.user, image_id)
        variant = self.variant()
        if variant is None:
            raise errors.ApiError(errors.INVALID_ARGUMENT, "variant must be preview or motion.")
        if variant == "motion_video":
            blob = record.blob
            if blob.motion_offset is None or blob.motion_length is None:
                raise errors.ApiError(errors.NO_MOTION_VIDEO)
            self.motion = record
            await self.send_original(record, include_body, (blob.motion_offset, blob.motion_length))
            return
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
        if self.motion is not None:
            name = f"{PurePath(self.motion.filename).stem or self.motion.sha256[:16]}.mp4"
            self.set_header("Content-Disposition", content_disposition(name))
