"""Real-world files from ../shared/corpus: all kept byte-exact (on the local disk and in
object storage), bombs defused, all upright."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from server.config import Settings
from server.services import Services
from server.storage.s3_config import S3Location
from tests.conftest import CORPUS, Api, needs_corpus
from tests.handlers.helpers import API, assert_error, assert_json_error, sha256

pytestmark = needs_corpus

IMAGES = f"{API}/images"
BOMBS = ("decompression_bomb.gif", "png_decompression_dos.png")
ORIENTED = [f"hopper_orientation_{n}.jpg" for n in range(2, 9)]
UPRIGHT_LIMIT = 8.0  # mean grey difference of 16x16 thumbnails; a wrong turn gives 35+


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []


async def upload(api: Api, names: list[str]) -> dict[str, dict[str, Any]]:
    files = [("file", name, (CORPUS / name).read_bytes()) for name in names]
    code, body = await api.upload(files)
    assert code == 200, body
    assert "rejected" not in body, body["rejected"]
    return {item["filename"]: item for item in body["items"]}


def fingerprint(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    return image.convert("L").resize((16, 16), Image.Resampling.BOX)


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(ImageStat.Stat(ImageChops.difference(a, b)).mean[0])


async def thumbnail(api: Api, item: dict[str, Any], size: str = "grid") -> bytes:
    response = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size={size}")
    assert response.code == 200, (item["filename"], response.body)
    assert response.headers["Content-Type"] == "image/jpeg"
    return bytes(response.body)


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The default data folder, or (parametrized "s3") originals in the Ceph gateway."""
    if getattr(request, "param", "local") == "s3":
        location: S3Location = request.getfixturevalue("s3_location")
        return Settings(
            data=tmp_path / "data", gc_interval=3600, blobs=location.url(), blobs_s3=location
        )
    return Settings(data=tmp_path / "data", gc_interval=3600)


@pytest.mark.parametrize("settings", ["local", "s3"], indirect=True)
@pytest.mark.gen_test(timeout=120)
async def test_every_file_is_kept_byte_exact(api: Api, services: Services) -> None:
    paths = corpus_files()
    assert paths, "the corpus is empty"
    items = await upload(api, [p.name for p in paths])
    assert sorted(items) == sorted(p.name for p in paths)
    await services.library.thumbnails.drain()
    for path in paths:
        data = path.read_bytes()
        item = items[path.name]
        assert item["id"] == sha256(data), path.name
        assert item["size"] == len(data)
        assert item["mime"].startswith("image/"), (path.name, item["mime"])
        response = await api.fetch(f"{IMAGES}/{item['id']}/original")
        assert response.code == 200, path.name
        assert response.body == data, path.name
        assert response.headers["Content-Type"] == item["mime"]

        code, now = await api.json(f"{IMAGES}/{item['id']}")
        assert code == 200
        if now["thumbnail"]:
            image = Image.open(io.BytesIO(await thumbnail(api, item)))
            image.load()
            assert max(image.size) <= 360
        else:
            code, body = await api.json(f"{IMAGES}/{item['id']}/thumbnail")
            assert_error(code, body, 404, "no_thumbnail")
    code, page = await api.json(f"{IMAGES}?limit=500")
    assert len(page["items"]) == len(paths)


@pytest.mark.gen_test(timeout=30)
async def test_bombs_are_kept_without_thumbnails(
    api: Api, anonymous: Api, services: Services
) -> None:
    items = await upload(api, list(BOMBS))
    for name in BOMBS:
        item = items[name]
        assert item["id"] == sha256((CORPUS / name).read_bytes())
        for size in ("grid", "preview"):
            response = await api.fetch(f"{IMAGES}/{item['id']}/thumbnail?size={size}")
            assert_json_error(response, 404, "no_thumbnail")
        original = await api.fetch(f"{IMAGES}/{item['id']}/original")
        assert original.body == (CORPUS / name).read_bytes()
    await services.library.thumbnails.drain()
    code, body = await anonymous.json(f"{API}/health")
    assert (code, body["status"]) == (200, "ok")
    for name in BOMBS:
        code, body = await api.json(f"{IMAGES}/{items[name]['id']}")
        assert (code, body["thumbnail"], body["urls"]["thumbnail"]) == (200, False, None)


@pytest.mark.gen_test(timeout=30)
async def test_exif_orientations_all_come_out_upright(api: Api, services: Services) -> None:
    items = await upload(api, ["hopper.jpg", *ORIENTED])
    await services.library.thumbnails.drain()
    upright = fingerprint(await thumbnail(api, items["hopper.jpg"]))
    for name in ORIENTED:
        stored = fingerprint((CORPUS / name).read_bytes())
        # The check has teeth: the stored pixels, not turned, are far from upright.
        assert difference(stored, upright) > 3 * UPRIGHT_LIMIT, name
        for size in ("grid", "preview"):
            turned = fingerprint(await thumbnail(api, items[name], size))
            assert difference(turned, upright) < UPRIGHT_LIMIT, (name, size)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(
    ("name", "mime"), [("hopper.heif", "image/hei"), ("hopper.avif", "image/avif")]
)
async def test_heif_and_avif_get_thumbnails(
    api: Api, services: Services, name: str, mime: str
) -> None:
    items = await upload(api, ["hopper.jpg", name])
    item = items[name]
    assert item["mime"].startswith(mime), item["mime"]
    assert (item["width"], item["height"]) == (128, 128)
    await services.library.thumbnails.drain()
    code, body = await api.json(f"{IMAGES}/{item['id']}")
    assert (code, body["thumbnail"]) == (200, True)
    assert body["urls"]["thumbnail"]
    data = await thumbnail(api, item)
    assert Image.open(io.BytesIO(data)).size == (128, 128)
    reference = fingerprint(await thumbnail(api, items["hopper.jpg"]))
    assert difference(fingerprint(data), reference) < UPRIGHT_LIMIT
