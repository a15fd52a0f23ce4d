"""Playable previews: an H.264 MP4 (at most 720p, upright) for videos a phone may not
play, made in the background by a worker of its own, told as `video.preview` events.

Sources are made here with PyAV (tests/imaging/videos.py): every frame's top half red
and its bottom half blue, so a preview's pixels say whether it came out upright.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from server.config import Settings
from server.imaging import DecodePool, PoolLimits
from server.services import Services, build_services
from server.services.video_previews import PreviewLimits, VideoPreviews
from tests.conftest import Api
from tests.handlers.test_events import close_sockets, listen, receive
from tests.handlers.test_videos import assert_described_by_the_spec, by_multipart, near
from tests.imaging.videos import BLUE, RED, make_video

IMAGES = "/api/v1/images"
# The events sockets these tests open are closed after each, as test_events' own are.
__all__ = ["close_sockets"]


def clip(tmp_path: Path, name: str, **kwargs: Any) -> bytes:
    return make_video(tmp_path / name, **kwargs).read_bytes()


def hevc(tmp_path: Path, **kwargs: Any) -> bytes:
    options: dict[str, Any] = {"fmt": "mov", "codec": "libx265", "frames": 10, "rate": 10}
    return clip(tmp_path, "IMG_0001.MOV", **{**options, **kwargs})


def decoded(data: bytes) -> tuple[Any, list[Image.Image], list[str]]:
    """The preview's video stream, its frames as images, and its audio codecs."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        audio = [s.codec_context.name for s in container.streams.audio]
        frames = [frame.to_image() for frame in container.decode(stream)]
        return stream.codec_context, frames, audio


async def video_events(ws: Any, image_id: str) -> list[dict[str, Any]]:
    """Every `video.preview` event of this video, up to its `done`."""
    seen = []
    while True:
        event = json.loads(await receive(ws, 60))
        if event["type"] == "video.preview" and event["id"] == image_id:
            seen.append(event)
            if event["done"]:
                return seen


@pytest.mark.gen_test(timeout=120)
async def test_an_hevc_video_gets_an_upright_h264_preview_at_most_720p_with_its_sound(
    api: Api, services: Services, base_url: str, token: str, tmp_path: Path
) -> None:
    ws = await listen(base_url, token)
    # 1920x1080 turned a quarter, as a phone held upright records it.
    data = hevc(tmp_path, size=(1920, 1080), rotation=90, audio=True)
    code, item = await by_multipart(api, data, "IMG_0001.MOV")
    assert code == 200, item
    assert (item["codec"], item["video_preview"], item["urls"]["video_preview"]) == (
        "hevc",
        "pending",
        None,
    )
    assert_described_by_the_spec(item)

    events = await video_events(ws, item["id"])
    progress = [e["progress"] for e in events if not e["done"]]
    assert progress and progress[0] == 0.0 and progress == sorted(progress)
    done = events[-1]
    assert (done["ready"], done["progress"], done["image"]["video_preview"]) == (True, 1.0, "ready")
    url = done["image"]["urls"]["video_preview"]
    assert url == f"{IMAGES}/{item['id']}/video?variant=preview"

    code, found = await api.json(f"{IMAGES}/{item['id']}")
    assert (code, found["video_preview"], found["urls"]["video_preview"]) == (200, "ready", url)
    assert_described_by_the_spec(found)
    response = await api.fetch(url)
    assert response.code == 200, response.body
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Accept-Ranges"] == "bytes"
    preview = response.body
    context, frames, audio = decoded(preview)
    assert (context.name, context.profile) == ("h264", "Main")
    assert (context.width, context.height) == (720, 1280)  # upright, fitted in 720p
    assert len(frames) == 10 and audio == ["aac"]
    image = frames[-1].convert("RGB")
    left, right = image.getpixel((20, 640)), image.getpixel((700, 640))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert near(left, RED) and near(right, BLUE), (left, right)  # as its poster turns

    # Served as a <video> asks for it: ranges, and the ETag for a second look.
    piece = await api.fetch(url, headers={"Range": "bytes=0-1"})
    assert (piece.code, piece.body) == (206, preview[:2])
    assert piece.headers["Content-Range"] == f"bytes 0-1/{len(preview)}"
    again = await api.fetch(url, headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304
    assert (await api.fetch(url, "HEAD")).code == 200
    assert services.previews.outcomes == {"made": 1}


@pytest.mark.gen_test(timeout=60)
async def test_an_h264_video_needs_no_preview_and_none_is_made(
    api: Api, services: Services, tmp_path: Path
) -> None:
    data = clip(tmp_path, "clip.mp4", frames=10)
    code, item = await by_multipart(api, data, "clip.mp4")
    assert code == 200, item
    assert (item["codec"], item["video_preview"]) == ("h264", "unneeded")
    await services.previews.drain()
    blob = await services.catalog.get_blob(item["id"])
    assert blob is not None and blob.preview == "unneeded"
    assert services.previews.outcomes == {}  # nothing was transcoded
    response = await api.fetch(f"{IMAGES}/{item['id']}/video?variant=preview")
    assert response.code == 404
    assert json.loads(response.body)["error"]["code"] == "no_video_preview"
    assert (await api.fetch(f"{IMAGES}/{item['id']}/video?variant=other")).code == 400
    code, photo = await api.upload([("p", "p.jpg", jpeg())])
    assert photo["items"][0]["video_preview"] is None  # a photo has none to speak of


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), RED).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    previews = getattr(request, "param", True)
    return Settings(data=tmp_path / "data", gc_interval=3600, video_previews=previews)


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("settings", [False], indirect=True)
async def test_with_previews_off_none_is_made_and_a_restart_with_them_on_makes_it(
    api: Api, services: Services, settings: Settings, tmp_path: Path
) -> None:
    data = clip(tmp_path, "clip.webm", fmt="webm", codec="libvpx-vp9", frames=10, rate=10)
    code, item = await by_multipart(api, data, "clip.webm")
    assert code == 200, item
    assert (item["codec"], item["video_preview"]) == ("vp9", "pending")
    await services.previews.drain()
    await asyncio.sleep(0.5)
    path = services.previews.path(item["id"])
    assert not path.exists() and services.previews.outcomes == {}
    assert services.previews.pool.pids == []  # no transcoding worker was even started

    # The next start, with previews on, finds the video still pending in the catalog.
    later = build_services(dataclasses.replace(settings, video_previews=True))
    try:
        later.previews.resume()
        await later.previews.drain()
        assert later.previews.outcomes == {"made": 1}
        blob = await later.catalog.get_blob(item["id"])
        assert blob is not None and blob.preview == "made"
        context, frames, audio = decoded(path.read_bytes())
        assert (context.name, context.width, context.height) == ("h264", 64, 48)
        assert len(frames) == 10 and audio == []
    finally:
        await later.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_truncated_video_gets_no_preview_and_no_transcode(
    api: Api, services: Services, tmp_path: Path
) -> None:
    whole = hevc(tmp_path, frames=20)
    data = whole[: whole.index(b"moov") - 16]
    code, item = await by_multipart(api, data, "cut.mov")
    assert code == 200, item
    assert item["video_preview"] == "unavailable"
    await services.previews.drain()
    assert services.previews.outcomes == {}


def frames_zeroed(data: bytes) -> bytes:
    out = bytearray(data)
    at = out.index(b"mdat") - 4
    size = int.from_bytes(out[at : at + 4], "big")
    out[at + 8 : at + size] = bytes(size - 8)
    return bytes(out)


@pytest.mark.gen_test(timeout=60)
async def test_a_video_whose_frames_do_not_decode_is_tried_once_and_settled(
    api: Api, services: Services, base_url: str, token: str, tmp_path: Path
) -> None:
    ws = await listen(base_url, token)
    data = frames_zeroed(clip(tmp_path, "v.mp4", codec="libx265", frames=20))
    code, item = await by_multipart(api, data, "zeros.mp4")
    assert code == 200, item
    events = await video_events(ws, item["id"])
    assert events[-1]["ready"] is False
    assert events[-1]["image"]["video_preview"] == "unavailable"
    await services.previews.drain()
    assert services.previews.outcomes == {"undecodable": 1}
    services.previews.resume()  # as a restart would: nothing is pending any more
    await services.previews.drain()
    assert services.previews.outcomes == {"undecodable": 1}
    response = await api.fetch(f"{IMAGES}/{item['id']}/video")
    assert response.code == 404


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("settings", [False], indirect=True)
async def test_a_transcode_that_runs_out_of_time_is_retried_a_few_times_then_given_up(
    api: Api, services: Services, settings: Settings, tmp_path: Path
) -> None:
    data = hevc(tmp_path, size=(640, 360), frames=30)
    code, item = await by_multipart(api, data, "IMG_0002.MOV")
    assert code == 200, item
    # A worker given next to no CPU: each attempt kills it, and the server goes on.
    previews = VideoPreviews(
        settings.thumbs_dir,
        services.store,
        services.catalog,
        DecodePool(PoolLimits(1, settings.decode_budget, 0.001)),
        services.events,
        services.io_executor,
        PreviewLimits(attempts=2, base_timeout=0.001, per_second=0.0),
    )
    try:
        previews.resume()
        await previews.drain()
    finally:
        await previews.close()
    assert previews.outcomes == {"failed": 2}
    blob = await services.catalog.get_blob(item["id"])
    assert blob is not None and blob.preview == "failed"
    code, found = await api.json(f"{IMAGES}/{item['id']}")
    assert (code, found["video_preview"]) == (200, "unavailable")
    assert not previews.path(item["id"]).exists()
    # What the killed workers were writing is no live writer's: the next clean-up takes it.
    folder = previews.path(item["id"]).parent
    left = len(list(folder.glob(".*.held.tmp")))  # one an attempt got as far as opening
    assert left <= 2
    assert await services.library.thumbnails.remove_temp_files(0) == left
    assert [p.name for p in folder.iterdir()] == [f"{item['id']}-360-v1.jpg"]  # its poster


@pytest.mark.gen_test(timeout=120)
async def test_a_stop_in_the_middle_of_a_transcode_leaves_it_pending_for_the_next_start(
    api: Api, services: Services, settings: Settings, base_url: str, token: str, tmp_path: Path
) -> None:
    ws = await listen(base_url, token)
    data = hevc(tmp_path, size=(640, 360), frames=30)
    code, item = await by_multipart(api, data, "IMG_0003.MOV")
    assert code == 200, item
    while True:  # its first progress (0) is told as the transcode starts
        event = json.loads(await receive(ws, 60))
        if event["type"] == "video.preview":
            assert (event["done"], event["progress"]) == (False, 0.0)
            break
    await services.previews.close()  # the server stops: its worker is killed
    assert services.previews.outcomes == {}
    blob = await services.catalog.get_blob(item["id"])
    assert blob is not None and blob.preview is None
    assert not services.previews.path(item["id"]).exists()

    later = build_services(settings)
    try:
        later.previews.resume()
        await later.previews.drain()
        assert later.previews.outcomes == {"made": 1}
        context, frames, _ = decoded(later.previews.path(item["id"]).read_bytes())
        assert (context.width, context.height, len(frames)) == (640, 360, 30)
    finally:
        await later.close()


@pytest.mark.gen_test(timeout=120)
async def test_a_preview_whose_file_is_gone_is_made_again_and_gc_removes_it_with_its_video(
    api: Api, services: Services, tmp_path: Path
) -> None:
    data = clip(tmp_path, "clip.webm", fmt="webm", codec="libvpx-vp9", frames=10, rate=10)
    code, item = await by_multipart(api, data, "clip.webm")
    assert code == 200, item
    previews = services.previews
    await previews.drain()
    url = f"{IMAGES}/{item['id']}/video?variant=preview"
    first = await api.fetch(url)
    assert first.code == 200
    previews.path(item["id"]).unlink()
    response = await api.fetch(url)
    assert response.code == 404
    assert json.loads(response.body)["error"]["code"] == "no_video_preview"
    code, found = await api.json(f"{IMAGES}/{item['id']}")
    assert found["video_preview"] in ("pending", "ready")  # being made again, or made
    await previews.drain()
    again = await api.fetch(url)
    assert (again.code, again.body) == (200, first.body)
    assert previews.outcomes == {"made": 2}

    assert (await api.fetch(f"{IMAGES}/{item['id']}", "DELETE")).code == 200
    assert (await api.fetch(f"/api/v1/trash/{item['id']}", "DELETE")).code == 204
    services.library.collector.grace = 0
    report = await services.library.collect_garbage()
    assert report.blobs_removed == 1
    assert not previews.path(item["id"]).exists()


@pytest.mark.gen_test(timeout=60)
async def test_the_preview_plays_from_its_signed_url_without_a_token(
    api: Api, anonymous: Api, services: Services, tmp_path: Path
) -> None:
    data = clip(tmp_path, "clip.webm", fmt="webm", codec="libvpx-vp9", frames=10, rate=10)
    code, item = await by_multipart(api, data, "clip.webm")
    assert code == 200, item
    assert item["signed_urls"]["video_preview"] is None  # none yet
    await services.previews.drain()
    code, found = await api.json(f"{IMAGES}/{item['id']}")
    signed = found["signed_urls"]["video_preview"]
    assert signed.startswith(found["urls"]["video_preview"] + "&user=")
    assert "token" not in signed
    whole = await anonymous.fetch(signed)
    assert (whole.code, whole.headers["Content-Type"]) == (200, "video/mp4")
    piece = await anonymous.fetch(signed, headers={"Range": "bytes=0-1"})
    assert (piece.code, piece.body) == (206, whole.body[:2])
    # Signed for the preview alone: the same signature opens neither the original...
    original = signed.replace("/video?variant=preview&", "/original?")
    assert (await anonymous.fetch(original)).code == 403
    # ...nor, tampered with, the preview.
    tampered = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
    assert (await anonymous.fetch(tampered)).code == 403
    assert (await anonymous.fetch(found["urls"]["video_preview"])).code == 401
