"""How records look on the wire."""

from __future__ import annotations

from typing import Any

from .catalog import ImageRecord

API = "/api/v1"


def image_json(record: ImageRecord, **extra: Any) -> dict[str, Any]:
    blob = record.blob
    # Thumbnails made before the original was damaged are still served; none is made after.
    makeable = blob.thumbnail is True or (blob.thumbnail is None and not blob.damaged)
    has_thumbnail = blob.decodable and makeable
    base = f"{API}/images/{blob.sha256}"
    body: dict[str, Any] = {
        "id": blob.sha256,
        "sha256": blob.sha256,
        "md5": blob.md5,
        "size": blob.size,
        "mime": blob.mime,
        "format": blob.format,
        "width": blob.width,
        "height": blob.height,
        "orientation": blob.orientation,
        "taken_at": record.taken_at,
        "uploaded_at": record.uploaded_at,
        "filename": record.filename,
        "camera": (
            {"make": blob.camera_make, "model": blob.camera_model}
            if blob.camera_make or blob.camera_model
            else None
        ),
        "gps": blob.has_gps,
        "exif": blob.exif,
        "thumbnail": has_thumbnail,
        "urls": {
            "original": f"{base}/original",
            "thumbnail": f"{base}/thumbnail" if has_thumbnail else None,
            "preview": f"{base}/thumbnail?size=preview" if has_thumbnail else None,
        },
    }
    if record.deleted_at is not None:
        body["deleted_at"] = record.deleted_at
    if blob.damaged:
        # The original is not served until the photo is uploaded again.
        body["damaged"] = True
    body.update(extra)
    return body
