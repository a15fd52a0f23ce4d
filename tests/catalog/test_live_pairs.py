"""Live Photos: a still and a MOV with the same Apple identifier are each other's
`live_partner` in a library that lists both, on both backends, whichever came first."""

from __future__ import annotations

import dataclasses

import pytest

from server.catalog import BlobRecord, Catalog
from tests.catalog.records import blob

ID = "5A7D3F4E-1B2C-4D5E-8F90-0A1B2C3D4E5F"


def still(name: str, live_id: str | None = ID) -> BlobRecord:
    return dataclasses.replace(blob(name), live_id=live_id)


def mov(name: str, live_id: str | None = ID) -> BlobRecord:
    return dataclasses.replace(
        blob(name), kind="video", format="MOV", mime="video/quicktime", live_id=live_id
    )


@pytest.mark.gen_test
@pytest.mark.parametrize("still_first", [True, False], ids=["still-first", "mov-first"])
async def test_the_halves_pair_whichever_comes_first(catalog: Catalog, still_first: bool) -> None:
    alice = await catalog.ensure_user("alice")
    photo, video = still("IMG_1.HEIC"), mov("IMG_1.MOV")
    order = [(photo, "IMG_1.HEIC"), (video, "IMG_1.MOV")]
    if not still_first:
        order.reverse()
    first, _ = await catalog.add_image(alice.id, *order[0], 1000.0)
    second, _ = await catalog.add_image(alice.id, *order[1], 1001.0)
    assert first.live_partner is None  # alone when it came
    assert second.live_partner == first.sha256  # paired as it came
    got_still = await catalog.get_image(alice.id, photo.sha256)
    got_mov = await catalog.get_image(alice.id, video.sha256)
    assert got_still is not None and got_still.live_partner == video.sha256
    assert got_mov is not None and got_mov.live_partner == photo.sha256
    listed = {i.sha256: i.live_partner for i in await catalog.list_images(alice.id, 10, None)}
    assert listed == {photo.sha256: video.sha256, video.sha256: photo.sha256}
    # The MOV in the trash: the still stands alone, and is paired again once it is back.
    await catalog.trash(alice.id, video.sha256, 1002.0)
    alone = await catalog.get_image(alice.id, photo.sha256)
    assert alone is not None and alone.live_partner is None
    await catalog.restore(alice.id, video.sha256)
    again = await catalog.get_image(alice.id, photo.sha256)
    assert again is not None and again.live_partner == video.sha256


@pytest.mark.gen_test
async def test_only_the_other_half_in_the_same_library_pairs(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    await catalog.add_image(bob.id, mov("bob's MOV"), "IMG_1.MOV", 1000.0)
    photo, _ = await catalog.add_image(alice.id, still("alice's still"), "IMG_1.HEIC", 1001.0)
    assert photo.live_partner is None  # bob's half is not in alice's library
    other, _ = await catalog.add_image(alice.id, mov("another", "OTHER-ID"), "IMG_2.MOV", 1002.0)
    assert other.live_partner is None
    twin, _ = await catalog.add_image(alice.id, still("a second still"), "IMG_1b.HEIC", 1003.0)
    assert twin.live_partner is None  # two stills are not a pair
    plain, _ = await catalog.add_image(alice.id, still("plain", None), "p.jpg", 1004.0)
    assert plain.live_partner is None
