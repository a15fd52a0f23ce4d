"""SQLiteCatalog's accounts: WeChat openids to users, devices, revocation."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from server.catalog import Catalog
from server.catalog.sqlite import SQLiteCatalog

# What these tests look at is SQLite's own file (a side connection, PRAGMAs).
sqlite_only = pytest.mark.parametrize("catalog", ["sqlite"], indirect=True)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite3"


@pytest.mark.gen_test
@sqlite_only
async def test_an_openid_maps_to_one_user(catalog: SQLiteCatalog, path: Path) -> None:
    first = await catalog.wechat_user("o-mum", ["wx-11111111", "wx-111111112222"])
    again = await catalog.wechat_user("o-mum", ["wx-99999999"])
    assert again == first
    assert first.name == "wx-11111111"
    other = await catalog.wechat_user("o-dad", ["wx-22222222"])
    assert other.id != first.id
    with sqlite3.connect(path) as side:
        rows = side.execute("SELECT name, wechat_openid FROM users ORDER BY id").fetchall()
    assert rows == [("wx-11111111", "o-mum"), ("wx-22222222", "o-dad")]


@pytest.mark.gen_test
async def test_a_taken_name_moves_on_to_the_next(catalog: Catalog) -> None:
    await catalog.ensure_user("wx-abcdef01")
    user = await catalog.wechat_user("o-x", ["wx-abcdef01", "wx-abcdef012345"])
    assert user.name == "wx-abcdef012345"
    assert await catalog.find_user("wx-abcdef012345") == user
    with pytest.raises(ValueError):
        await catalog.wechat_user("o-y", ["wx-abcdef01", "wx-abcdef012345"])


@pytest.mark.gen_test
async def test_devices_are_listed_and_revoked_per_user(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    bob = await catalog.ensure_user("bob")
    phone = await catalog.add_token(alice.id, "h1", "phone")
    tablet = await catalog.add_token(alice.id, "h2", "tablet")
    laptop = await catalog.add_token(bob.id, "h3", "laptop")
    assert [d.name for _, d in await catalog.devices(alice.id)] == ["phone", "tablet"]
    assert [(u.name, d.name) for u, d in await catalog.devices()] == [
        ("alice", "phone"),
        ("alice", "tablet"),
        ("bob", "laptop"),
    ]
    assert await catalog.user_for_token("h1") is not None

    # Not bob's to revoke; then alice's own.
    assert await catalog.revoke_device(phone.id, bob.id, time.time()) is None
    assert await catalog.user_for_token("h1") is not None
    revoked = await catalog.revoke_device(phone.id, alice.id, time.time())
    assert revoked is not None and revoked.id == phone.id and revoked.user_id == alice.id
    assert await catalog.user_for_token("h1") is None
    assert await catalog.revoke_device(phone.id, alice.id, time.time()) is None  # once
    assert [d.name for _, d in await catalog.devices(alice.id)] == ["tablet"]

    # The admin revokes anyone's.
    assert await catalog.revoke_device(laptop.id, None, time.time()) is not None
    assert await catalog.user_for_token("h3") is None
    assert await catalog.devices(bob.id) == []
    assert await catalog.revoke_device(99999, None, time.time()) is None

    found = await catalog.revoked_devices([phone.id, tablet.id, laptop.id, 4242])
    assert [d.id for d in found] == [phone.id, laptop.id]
    many = await catalog.revoked_devices(range(1, 2000))
    assert [d.id for d in many] == [phone.id, laptop.id]


@pytest.mark.gen_test
async def test_last_seen_is_recorded_when_a_token_is_used(catalog: Catalog) -> None:
    alice = await catalog.ensure_user("alice")
    device = await catalog.add_token(alice.id, "h1", "phone")
    assert device.last_seen_at is None
    ((_, listed),) = await catalog.devices(alice.id)
    assert listed.last_seen_at is None
    await catalog.user_for_token("h1")
    ((_, listed),) = await catalog.devices(alice.id)
    assert listed.last_seen_at is not None
    assert listed.created_at == device.created_at
