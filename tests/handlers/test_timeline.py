"""GET /timeline: the library's months with their counts, and a cursor that lists each."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.handlers.helpers import API, photo, upload_one

TIMELINE = f"{API}/timeline"
IMAGES = f"{API}/images"


@pytest.mark.gen_test
async def test_months_in_list_order_with_counts_and_cursors(api: Api, other_api: Api) -> None:
    taken = {
        "2024:03:31 23:59:59": "2024-03",
        "2024:03:01 00:00:00": "2024-03",
        "2024:04:01 00:00:00": "2024-04",
        "2023:12:25 10:00:00": "2023-12",
        "2024:03:15 12:00:00": "2024-03",
    }
    ids = {}
    for moment in taken:
        ids[moment] = (await upload_one(api, photo(taken=moment)))["id"]
    await upload_one(other_api, photo(taken="2022:01:01 10:00:00"))
    trashed = await upload_one(api, photo(taken="2021:06:01 10:00:00"))
    code, body = await api.json(f"{IMAGES}/{trashed['id']}", "DELETE")
    assert code == 200, body

    code, body = await api.json(TIMELINE)
    assert code == 200, body
    assert body["total"] == 5
    assert [(m["month"], m["count"]) for m in body["months"]] == [
        ("2024-04", 1),
        ("2024-03", 3),
        ("2023-12", 1),
    ]
    # Each cursor lists from the month's newest photo: a page as long as the month
    # holds exactly its photos, in the order of the whole list.
    code, everything = await api.json(f"{IMAGES}?limit=10")
    order = [i["id"] for i in everything["items"]]
    start = 0
    for month in body["months"]:
        code, page = await api.json(f"{IMAGES}?limit={month['count']}&cursor={month['cursor']}")
        assert code == 200, page
        assert [i["id"] for i in page["items"]] == order[start : start + month["count"]]
        start += month["count"]
    assert start == len(order)
    march = body["months"][1]
    code, page = await api.json(f"{IMAGES}?limit=10&cursor={march['cursor']}")
    assert [i["id"] for i in page["items"]][:3] == [
        ids["2024:03:31 23:59:59"],
        ids["2024:03:15 12:00:00"],
        ids["2024:03:01 00:00:00"],
    ]


@pytest.mark.gen_test
async def test_an_empty_library_has_no_months(api: Api, anonymous: Api) -> None:
    code, body = await api.json(TIMELINE)
    assert (code, body) == (200, {"total": 0, "months": []})
    code, body = await anonymous.json(TIMELINE)
    assert code == 401
