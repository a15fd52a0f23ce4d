"""A real server with its originals in a real Ceph gateway (--blobs s3://...): uploads
(multipart and tus) go to the store, originals come back from it byte-exact with
Range, ETag and 304, thumbnails are made from it, purge and gc remove its objects,
scrub finds a flipped one, and a stopped gateway is a 503 that acknowledges nothing."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from scripts.s3_gateway import Gateway
from server.config import Settings
from server.services import Services, build_services
from server.services.scrub import Scrubber
from server.services.thumbnails import GRID
from server.storage.s3_config import S3Location
from server.storage.s3_store import S3BlobStore
from tests.conftest import Api
from tests.handlers.helpers import API, assert_json_error, files_in, ids_in, photo, upload_one
from tests.handlers.test_events import big_jpeg, close_sockets, events_until, listen

__all__ = ["close_sockets"]  # a fixture, used by name

TIMEOUT = 180
IMAGES = f"{API}/images"
UPLOADS = f"{API}/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
DATA = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, s3_location: S3Location) -> Settings:
    extra: dict[str, Any] = getattr(request, "param", {})
    return Settings(
        data=tmp_path / "data",
        gc_interval=3600,
        blobs=s3_location.url(),
        blobs_s3=s3_location,
        **extra,
    )


def s3_store(services: Services) -> S3BlobStore:
    assert isinstance(services.store, S3BlobStore)
    return services.store


async def stored(services: Services) -> list[str]:
    return [sha256 async for sha256 in s3_store(services).all_blobs()]


async def derived_keys(services: Services) -> list[str]:
    home = await s3_store(services).home()
    prefix = f"{home.location.prefix}derived/"
    answer = await home._client.list_objects_v2(Bucket=home.bucket, Prefix=prefix)
    return sorted(item["Key"][len(prefix) :] for item in answer.get("Contents", []))


async def tus_create(api: Api, data: bytes, filename: str = "tus.jpg") -> str:
    name = base64.b64encode(filename.encode()).decode()
    response = await api.fetch(
        UPLOADS + "/",
        "POST",
        b"",
        {**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"},
    )
    assert response.code == 201, response.body
    location: str = response.headers["Location"]
    return location


async def tus_patch(api: Api, location: str, offset: int, chunk: bytes) -> Any:
    return await api.fetch(location, "PATCH", chunk, {**DATA, "Upload-Offset": str(offset)})


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_uploads_go_to_the_store_and_come_back_byte_exact(
    api: Api, services: Services, settings: Settings, base_url: str, token: str
) -> None:
    posted = photo((640, 480))
    item = await upload_one(api, posted, "été.jpg")
    assert item["id"] == hashlib.sha256(posted).hexdigest()

    sent = big_jpeg(1)  # two tus chunks
    location = await tus_create(api, sent)
    half = len(sent) // 2
    assert (await tus_patch(api, location, 0, sent[:half])).code == 204
    done = await tus_patch(api, location, half, sent[half:])
    assert done.code == 204, done.body
    tus_id = done.headers["Tubei-Image-Id"]
    assert tus_id == hashlib.sha256(sent).hexdigest()

    assert sorted(await stored(services)) == sorted([item["id"], tus_id])
    assert files_in(settings.blobs_dir) == []  # nothing of them kept on the local disk
    assert sorted(await ids_in(api)) == sorted([item["id"], tus_id])

    original = f"{IMAGES}/{item['id']}/original"
    whole = await api.fetch(original)
    assert whole.code == 200 and whole.body == posted
    assert whole.headers["ETag"] == f'"{item["id"]}"'
    assert whole.headers["Content-Type"] == "image/jpeg"
    assert whole.headers["Content-Length"] == str(len(posted))
    assert whole.headers["Content-Disposition"].startswith('inline; filename="_t_.jpg"')
    assert "immutable" in whole.headers["Cache-Control"]

    part = await api.fetch(original, headers={"Range": "bytes=100-199"})
    assert part.code == 206 and part.body == posted[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(posted)}"
    tail = await api.fetch(original, headers={"Range": "bytes=-10"})
    assert tail.code == 206 and tail.body == posted[-10:]

    unchanged = await api.fetch(original, headers={"If-None-Match": whole.headers["ETag"]})
    assert unchanged.code == 304 and unchanged.body == b""

    outside = await api.fetch(original, headers={"Range": f"bytes={len(posted)}-"})
    assert_json_error(outside, 416, "range_not_satisfiable")
    assert outside.headers["Content-Range"] == f"bytes */{len(posted)}"

    head = await api.fetch(original, "HEAD")
    assert head.code == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(posted))

    ws = await listen(base_url, token)
    watched = await api.fetch(f"{IMAGES}/{tus_id}/original", headers={"X-Download-Id": "s3-1"})
    assert watched.code == 200 and watched.body == sent
    seen = await events_until(ws, "download.progress", "s3-1")
    while seen[-1].get("sent") != len(sent):
        seen += await events_until(ws, "download.progress", "s3-1")
    assert seen[-1]["total"] == len(sent)

    for size in ("grid", "preview"):
        thumb = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size={size}")
        assert thumb.code == 200, thumb.body
        assert thumb.headers["Content-Type"] == "image/jpeg" and thumb.body[:2] == b"\xff\xd8"
    # Once the background jobs (the tus upload's thumbnails among them) are done, the
    # copies decoded from are gone.
    await services.library.thumbnails.drain()
    fetched = [p for p in s3_store(services).staging_dir.iterdir() if "fetch" in p.name]
    assert fetched == []

    # The thumbnails are in the store too; the local files are a cache of them.
    thumbs = services.library.thumbnails
    names = sorted(p.name for p in files_in(settings.thumbs_dir) if item["id"] in p.name)
    assert len(names) == 2
    assert {f"{item['id']}/{name}" for name in names} <= set(await derived_keys(services))
    made = thumbs.outcomes["made"]
    for path in files_in(settings.thumbs_dir):
        path.unlink()
    again = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size=preview")
    assert again.code == 200 and again.body[:2] == b"\xff\xd8"
    assert thumbs.outcomes["made"] == made  # fetched from the store, not decoded again


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_purge_and_gc_remove_the_object(api: Api, services: Services) -> None:
    gone, stays = photo(), photo()
    item, other = await upload_one(api, gone), await upload_one(api, stays)
    await services.library.thumbnails.drain()
    assert (await api.json(f"{IMAGES}/{item['id']}", "DELETE"))[0] == 200
    assert (await api.fetch(f"{API}/trash/{item['id']}", "DELETE")).code == 204
    assert (await services.library.collect_garbage()).blobs_removed == 0  # the grace period
    assert sorted(await stored(services)) == sorted([item["id"], other["id"]])
    services.library.collector.grace = 0
    assert (await services.library.collect_garbage()).blobs_removed == 1
    assert await stored(services) == [other["id"]]
    assert await s3_store(services).graves(-3600) == []
    assert [key.split("/")[0] for key in await derived_keys(services)] == [other["id"]]
    again = await upload_one(api, gone)
    assert again["duplicate"] is False
    assert (await api.fetch(f"{IMAGES}/{item['id']}/original")).body == gone


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_scrub_finds_a_flipped_object_and_an_upload_mends_it(
    api: Api, services: Services
) -> None:
    data = photo((300, 200))
    item = await upload_one(api, data)
    await services.library.thumbnails.drain()
    home = await s3_store(services).home()
    flipped = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    await home._client.put_object(Bucket=home.bucket, Key=home.key(item["id"]), Body=flipped)

    scrubber = Scrubber(services.catalog, services.store, services.library.thumbnails)
    report = await scrubber.run()
    assert [(f.sha256, f.kind) for f in report.findings] == [(item["id"], "mismatch")]
    assert_json_error(await api.fetch(f"{IMAGES}/{item['id']}/original"), 410, "image_damaged")

    await upload_one(api, data)  # the same photo again writes over the bad object
    assert (await api.fetch(f"{IMAGES}/{item['id']}/original")).body == data


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_stopped_gateway_is_503_and_a_tus_upload_resumes(
    api: Api, services: Services, s3_running: Gateway
) -> None:
    kept = photo()
    item = await upload_one(api, kept)
    await services.library.thumbnails.drain()
    later = big_jpeg(1)
    location = await tus_create(api, later)
    half = len(later) // 2
    assert (await tus_patch(api, location, 0, later[:half])).code == 204

    s3_running.stop_rgw()
    refused = await api.upload([("file", "new.jpg", photo())])
    assert refused[0] == 503 and refused[1]["error"]["code"] == "storage_unavailable"
    response = await api.fetch(f"{IMAGES}/{item['id']}/original")
    assert_json_error(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == "5"
    final = await tus_patch(api, location, half, later[half:])
    assert_json_error(final, 503, "storage_unavailable")
    assert final.headers["Upload-Offset"] == str(half) and final.headers["Retry-After"]
    head = await api.fetch(location, "HEAD", headers=TUS)
    assert head.headers["Upload-Offset"] == str(half)
    assert await ids_in(api) == [item["id"]]  # nothing acknowledged, nothing listed
    thumb = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail")
    assert thumb.code == 200  # thumbnails are on the local disk
    s3_store(services)._kept.clear()  # no staged copy left: a preview needs the store
    preview = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size=preview")
    assert_json_error(preview, 503, "storage_unavailable")
    # No decode was counted as failed for it (this call counts the first).
    assert await services.catalog.attempt_thumbnail(item["id"]) == 1

    s3_running.start_rgw(wait=90)
    resumed = await tus_patch(api, location, half, later[half:])
    assert resumed.code == 204, resumed.body
    later_id = resumed.headers["Tubei-Image-Id"]
    assert (await api.fetch(f"{IMAGES}/{later_id}/original")).body == later
    preview = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size=preview")
    assert preview.code == 200 and preview.body[:2] == b"\xff\xd8"
    assert sorted(await ids_in(api)) == sorted([item["id"], later_id])
    assert json.loads((await api.fetch(f"{IMAGES}/{item['id']}")).body)["id"] == item["id"]


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("settings", [{"s3_redirect": True}], indirect=True)
async def test_s3_redirect_sends_the_client_to_a_presigned_url(api: Api) -> None:
    data = photo()
    item = await upload_one(api, data, "été.jpg")
    original = f"{IMAGES}/{item['id']}/original"
    moved = await api.fetch(original, follow_redirects=False)
    assert moved.code == 302, moved.body
    assert "no-store" in moved.headers["Cache-Control"] and "ETag" not in moved.headers
    location = moved.headers["Location"]
    assert "X-Amz-Signature=" in location and item["id"] in location
    served = await api.client.fetch(location)
    assert served.body == data and served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Content-Disposition"].endswith("filename*=UTF-8''%C3%A9t%C3%A9.jpg")
    part = await api.client.fetch(location, headers={"Range": "bytes=10-19"})
    assert part.code == 206 and part.body == data[10:20]
    # HEAD and conditional GETs are answered here as without the redirect.
    head = await api.fetch(original, "HEAD")
    assert head.code == 200 and head.headers["Content-Length"] == str(len(data))
    unchanged = await api.fetch(original, headers={"If-None-Match": f'"{item["id"]}"'})
    assert unchanged.code == 304


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_an_object_gone_from_the_store_is_damaged_until_uploaded_again(
    api: Api, services: Services
) -> None:
    data = photo()
    item = await upload_one(api, data)
    await services.library.thumbnails.drain()
    await s3_store(services).delete(item["id"])  # behind Tubei's back
    original = f"{IMAGES}/{item['id']}/original"
    assert_json_error(await api.fetch(original), 410, "image_damaged")
    assert json.loads((await api.fetch(f"{IMAGES}/{item['id']}")).body)["damaged"] is True
    await upload_one(api, data)
    assert (await api.fetch(original)).body == data
    assert "damaged" not in json.loads((await api.fetch(f"{IMAGES}/{item['id']}")).body)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_large_original_streams_in_bounded_memory(api: Api) -> None:
    data = big_jpeg(16)
    item = await upload_one(api, data)
    received = hashlib.sha256()
    tracemalloc.start()
    try:
        response = await api.fetch(
            f"{IMAGES}/{item['id']}/original", streaming_callback=received.update
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.code == 200 and received.hexdigest() == item["id"]
    assert peak < 6 * 1024 * 1024, f"{peak / 2**20:.1f} MiB held for a {len(data) >> 20} MiB body"


async def derived_keys_at(services: Services, location: S3Location) -> list[str]:
    home = await s3_store(services).home()  # the same gateway and credentials
    prefix = f"{location.prefix}derived/"
    answer = await home._client.list_objects_v2(Bucket=location.bucket, Prefix=prefix)
    return sorted(item["Key"][len(prefix) :] for item in answer.get("Contents", []))


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_thumbs_in_a_prefix_of_their_own(settings: Settings, s3_location: S3Location) -> None:
    elsewhere = dataclasses.replace(s3_location, prefix=f"{s3_location.prefix}thumbs-apart/")
    apart = dataclasses.replace(settings, thumbs=elsewhere.url(), thumbs_s3=elsewhere)
    built = build_services(apart)
    try:
        await built.start()
        user = await built.catalog.ensure_user("alice")
        async with built.library.writing() as writer:
            await writer.write(photo((640, 480)))
            sha256 = (await built.library.ingest_one(user, writer, "a.jpg")).image.blob.sha256
        thumbs = built.library.thumbnails
        await thumbs.drain()
        kept = await derived_keys_at(built, elsewhere)
        assert kept and all(key.startswith(f"{sha256}/") for key in kept)
        assert await derived_keys(built) == []  # none beside the blobs
        made = thumbs.outcomes["made"]
        for path in files_in(apart.thumbs_dir):
            path.unlink()
        blob = await built.catalog.get_blob(sha256)
        assert blob is not None
        assert await thumbs.ensure(blob, GRID) is not None
        assert thumbs.outcomes["made"] == made  # fetched from its own prefix
    finally:
        await built.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_thumbs_on_this_disk_only(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "thumbnails"
    local = dataclasses.replace(settings, thumbs=f"file://{folder}")
    built = build_services(local)
    try:
        await built.start()
        user = await built.catalog.ensure_user("alice")
        async with built.library.writing() as writer:
            await writer.write(photo((640, 480)))
            await built.library.ingest_one(user, writer, "a.jpg")
        await built.library.thumbnails.drain()
        assert local.thumbs_dir == folder and len(files_in(folder)) == 1  # the grid size
        assert await derived_keys(built) == []
    finally:
        await built.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_motion_photos_video_part_is_streamed_from_the_store(
    api: Api, services: Services, tmp_path: Path
) -> None:
    from tests.handlers.test_motion_photos import motion_photo

    data, video = motion_photo(tmp_path)
    item = await upload_one(api, data, "motion.jpg")
    assert item["kind"] == "motion"
    assert services.store.local_path(item["id"]) is None
    url = item["urls"]["motion_video"]
    whole = await api.fetch(url)
    assert whole.code == 200 and whole.body == video
    assert whole.headers["Content-Type"] == "video/mp4"
    piece = await api.fetch(url, headers={"Range": "bytes=100-199"})
    assert piece.code == 206 and piece.body == video[100:200]
    assert piece.headers["Content-Range"] == f"bytes 100-199/{len(video)}"
    again = await api.fetch(url, headers={"If-None-Match": piece.headers["ETag"]})
    assert again.code == 304
    assert_json_error(
        await api.fetch(url, headers={"Range": f"bytes={len(video)}-"}),
        416,
        "range_not_satisfiable",
    )
    assert (await api.fetch(item["urls"]["original"])).body == data
