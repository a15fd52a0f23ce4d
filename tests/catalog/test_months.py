"""The library's months on both backends: UTC months of the sort time, newest first."""

from __future__ import annotations

import pytest

from server.catalog import Catalog
from tests.catalog.test_sqlite import blob


@pytest.mark.gen_test
async def test_months_count_the_library_by_month_of_its_sort_time(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    assert await catalog.months(alice.id) == []
    taken = [
        "2024-02-29T23:59:59",  # no offset: UTC, the camera's clock
        "2024-02-01T00:00:00",
        "2024-03-01T00:30:00+08:00",  # 2024-02-29 16:30 UTC
        "2023-12-31T23:00:00",
        "1969-07-20T20:17:00",  # before the epoch
    ]
    for n, moment in enumerate(taken):
        await catalog.add_image(alice.id, blob(n, moment), "p.jpg", 1.0e9 + n)
    # No time taken: the upload's time (2001-09-09 UTC) is the sort time.
    await catalog.add_image(alice.id, blob("untimed"), "p.jpg", 1.0e9)
    await catalog.add_image(bob.id, blob("bob", "2020-05-05T10:00:00"), "p.jpg", 1.0)
    trashed = blob("trashed", "2019-01-01T10:00:00")
    await catalog.add_image(alice.id, trashed, "p.jpg", 1.0)
    await catalog.trash(alice.id, trashed.sha256, 2.0)

    assert await catalog.months(alice.id) == [
        ("2024-02", 3),
        ("2023-12", 1),
        ("2001-09", 1),
        ("1969-07", 1),
    ]
    assert await catalog.months(bob.id) == [("2020-05", 1)]
    await catalog.restore(alice.id, trashed.sha256)
    assert (await catalog.months(alice.id))[-1] == ("1969-07", 1)
    assert ("2019-01", 1) in await catalog.months(alice.id)
