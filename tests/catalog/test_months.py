"""The library's months on both backends: UTC months of the sort time, newest first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.catalog import Catalog
from tests.catalog.records import blob


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


@pytest.mark.gen_test
async def test_months_keep_their_boundaries_and_skip_gaps(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    taken = [
        "2024-03-31T23:59:59",  # the last second of March
        "2024-04-01T00:00:00",  # the first of April, on the boundary
        "2024-04-15T12:00:00",
        "2023-12-31T10:00:00",
        "1999-07-04T08:00:00",  # a gap of years: one step, no empty month between
        "2024-04-30T23:00:00+08:00",  # with an offset: the UTC moment decides (April)
        "2024-05-01T07:59:59+08:00",  # 2024-04-30 23:59:59 UTC: still April
    ]
    for n, moment in enumerate(taken):
        await catalog.add_image(alice.id, blob(f"a{n}", moment), f"{n}.jpg", 1.0)
    await catalog.add_image(bob.id, blob("b", "2025-01-01T00:00:00"), "b.jpg", 1.0)

    assert await catalog.months(alice.id) == [
        ("2024-04", 4),
        ("2024-03", 1),
        ("2023-12", 1),
        ("1999-07", 1),
    ]
    # Another user's photos stay out of each other's months, and a stranger has none.
    assert await catalog.months(bob.id) == [("2025-01", 1)]
    assert await catalog.months(9999) == []


@pytest.mark.gen_test
async def test_the_trash_takes_a_month_away_and_restore_brings_it_back(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    march = blob("m", "2024-03-10T00:00:00")
    await catalog.add_image(alice.id, march, "m.jpg", 1.0)
    await catalog.add_image(alice.id, blob("a", "2024-04-10T00:00:00"), "a.jpg", 1.0)
    await catalog.add_image(alice.id, blob("f", "2024-02-10T00:00:00"), "f.jpg", 1.0)
    await catalog.trash(alice.id, march.sha256, 2.0)
    assert await catalog.months(alice.id) == [("2024-04", 1), ("2024-02", 1)]
    await catalog.restore(alice.id, march.sha256)
    assert await catalog.months(alice.id) == [("2024-04", 1), ("2024-03", 1), ("2024-02", 1)]


@pytest.mark.gen_test
async def test_each_month_is_one_unbroken_run_of_the_list(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    for n in range(40):
        moment = f"2024-{1 + n % 5:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00"
        await catalog.add_image(alice.id, blob(n, moment), f"{n}.jpg", 1.0)
    listed = await catalog.list_images(alice.id, 100, None)
    runs: list[tuple[str, int]] = []
    for item in listed:
        month = datetime.fromtimestamp(item.taken_ts, UTC).strftime("%Y-%m")
        if runs and runs[-1][0] == month:
            runs[-1] = (month, runs[-1][1] + 1)
        else:
            runs.append((month, 1))
    assert len(runs) == 5
    assert await catalog.months(alice.id) == runs
