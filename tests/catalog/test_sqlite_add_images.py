"""add_images, on both backends: a request's photos recorded in one transaction, or none."""

from __future__ import annotations

import dataclasses
import sqlite3
import time

import psycopg
import pytest

from server.catalog import Catalog
from tests.catalog.records import blob


@pytest.mark.gen_test(timeout=10)
async def test_every_photo_is_recorded_in_order_with_its_duplicate_flag(
    catalog: Catalog,
) -> None:
    user = await catalog.ensure_user("alice")
    await catalog.add_image(user.id, blob(1), "had.jpg", time.time())
    added = await catalog.add_images(
        user.id, [(blob(2), "new.jpg"), (blob(1), "had.jpg"), (blob(2), "again.jpg")], time.time()
    )
    assert [(image.sha256, duplicate) for image, duplicate in added] == [
        (blob(2).sha256, False),
        (blob(1).sha256, True),
        (blob(2).sha256, True),
    ]
    assert added[0][0].filename == "new.jpg"


@pytest.mark.gen_test(timeout=10)
async def test_a_failure_on_the_third_photo_records_none(catalog: Catalog) -> None:
    user = await catalog.ensure_user("alice")
    broken = dataclasses.replace(blob(3), md5=None)  # type: ignore[arg-type]
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.NotNullViolation)):
        await catalog.add_images(
            user.id, [(blob(1), "1.jpg"), (blob(2), "2.jpg"), (broken, "3.jpg")], time.time()
        )
    assert await catalog.list_images(user.id, 10, None) == []
    assert await catalog.known_blobs() == set()
