"""How records and events look on the wire: the one place that builds JSON shapes and URLs.

Services hand records and domain events (`services/domain_events.py`, in their plain
form as the event hub carries them); handlers turn them into what clients read here.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from .catalog import ImageRecord
from .services import domain_events as de
from .services.media_urls import UserSigner, Variant
from .services.video_previews import preview_state

API = "/api/v1"


def signed_url(path: str, signer: UserSigner, sha256: str, variant: Variant, expires: int) -> str:
    """`path` with the query that stands in for a bearer token (handlers/signed.py)."""
    query = urllib.parse.urlencode(
        {
            "user": signer.user_id,
            "expires": expires,
            "signature": signer.sign(sha256, variant, expires),
        }
    )
    return f"{path}{'&' if '?' in path else '?'}{query}"


def signed_urls(
    urls: dict[str, str | None], signer: UserSigner, sha256: str, partner: str | None = None
) -> dict[str, Any]:
    """The same files as `urls`, each with its signature, for clients that cannot send
    headers; `expires_in`: seconds they stay valid from now. `live_video` is the original
    of another blob, `partner` (a Live Photo's MOV), and is signed as that one's."""
    expires = signer.expiry()
    variants: dict[str, Variant] = {
        "original": "original",
        "thumbnail": "grid",
        "preview": "preview",
        "video_preview": "video_preview",
        "motion_video": "motion_video",
        "live_video": "original",
    }
    body: dict[str, Any] = {}
    for name, url in urls.items():
        blob = partner if name == "live_video" and partner is not None else sha256
        body[name] = None if url is None else signed_url(url, signer, blob, variants[name], expires)
    body["expires_in"] = max(0, int(expires - signer.clock()))
    return body


def kind_of(record: ImageRecord) -> str:
    """`photo`, `video`, `motion` or `live`: a motion photo, and a Live Photo's still,
    are photos to a client that does not know the words."""
    blob = record.blob
    if blob.kind == "photo" and blob.motion_offset is not None:
        return "motion"
    if blob.kind == "photo" and record.live_partner is not None:
        return "live"
    return blob.kind


def image_json(
    record: ImageRecord, *, signer: UserSigner | None = None, **extra: Any
) -> dict[str, Any]:
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
        "kind": kind_of(record),
        "mime": blob.mime,
        "format": blob.format,
        "width": blob.width,
        "height": blob.height,
        "duration": blob.duration if blob.kind == "video" else None,
        "codec": blob.codec,
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
    # A video's playable preview (H.264 MP4, at most 720p), for phones that cannot play
    # its original; None for a photo.
    body["video_preview"] = preview = preview_state(blob)
    body["urls"]["video_preview"] = f"{base}/video?variant=preview" if preview == "ready" else None
    # A motion photo's video part, served from within its one original.
    motion = blob.motion_offset is not None
    body["urls"]["motion_video"] = f"{base}/video?variant=motion" if motion else None
    # A Live Photo: the still links to its MOV's original; the MOV, listed as the video
    # it also is, names its still.
    partner = record.live_partner
    live = partner is not None and blob.kind == "photo"
    body["urls"]["live_video"] = f"{API}/images/{partner}/original" if live else None
    body["live_still"] = partner if partner is not None and blob.kind == "video" else None
    if signer is not None:
        body["signed_urls"] = signed_urls(body["urls"], signer, blob.sha256, partner)
    if record.deleted_at is not None:
        body["deleted_at"] = record.deleted_at
    if blob.damaged:
        # The original is not served until the photo is uploaded again.
        body["damaged"] = True
    body.update(extra)
    return body


def event_json(event: dict[str, Any], signer: UserSigner | None = None) -> dict[str, Any]:
    """An event as the hub carries it (its plain form) to what a socket sends; `signer`:
    the socket's user's, for the images' signed URLs."""
    kind = event.get("type")
    if kind in (de.IMAGE_ADDED, de.IMAGE_RESTORED):
        image = de.record_from_plain(event["image"])
        return {"type": kind, "image": image_json(image, signer=signer)}
    if kind == de.VIDEO_PREVIEW and "image" in event:
        image_body = image_json(de.record_from_plain(event["image"]), signer=signer)
        return {**event, "ready": image_body["video_preview"] == "ready", "image": image_body}
    if kind == de.UPLOAD_DONE:
        done = de.UploadDone.from_plain(event)
        first = done.stored[0]
        body: dict[str, Any] = {
            "type": kind,
            "upload_id": done.upload_id,
            "image": image_json(first.image, signer=signer),
            "duplicate": first.duplicate,
        }
        if done.batch:
            body["items"] = [
                image_json(s.image, signer=signer, duplicate=s.duplicate) for s in done.stored
            ]
        return body
    return event
