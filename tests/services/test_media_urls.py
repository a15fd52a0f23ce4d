"""Signed media URLs: what a signature binds, how long it lives, and where the key is."""

from __future__ import annotations

from pathlib import Path

import pytest
import tornado.ioloop

from server import errors
from server.catalog.sqlite import SQLiteCatalog
from server.config import Settings
from server.services import build_services
from server.services.media_urls import MediaUrls
from tests.conftest import CLOSE_TIMEOUT, close_within

SHA = "a" * 64
OTHER_SHA = "b" * 64
TTL = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path, io_loop: tornado.ioloop.IOLoop) -> SQLiteCatalog:
    opened = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    yield opened  # type: ignore[misc]
    io_loop.run_sync(opened.close)


async def refused(urls: MediaUrls, *args: object) -> str:
    with pytest.raises(errors.ApiError) as raised:
        await urls.check(*args)  # type: ignore[arg-type]
    assert raised.value.kind is errors.SIGNED_URL_INVALID
    return raised.value.message


@pytest.mark.gen_test
async def test_a_signature_is_good_for_exactly_what_it_was_made_for(
    catalog: SQLiteCatalog,
) -> None:
    clock = Clock(1_000_000.0)
    urls = MediaUrls(catalog, TTL, clock)
    signer = await urls.signer(7)
    expires = signer.expiry()
    signature = signer.sign(SHA, "grid", expires)
    await urls.check(7, SHA, "grid", expires, signature)
    # each part it binds, changed
    await refused(urls, 8, SHA, "grid", expires, signature)
    await refused(urls, 7, OTHER_SHA, "grid", expires, signature)
    await refused(urls, 7, SHA, "preview", expires, signature)
    await refused(urls, 7, SHA, "original", expires, signature)
    await refused(urls, 7, SHA, "grid", expires + 1, signature)
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    await refused(urls, 7, SHA, "grid", expires, flipped)
    # under another server's key
    other_catalog = SQLiteCatalog(catalog.path.with_name("other.sqlite3"))
    try:
        other = await MediaUrls(other_catalog, TTL, clock).signer(7)
    finally:
        await other_catalog.close()
    await refused(urls, 7, SHA, "grid", expires, other.sign(SHA, "grid", expires))


@pytest.mark.gen_test
async def test_a_url_lives_three_quarters_of_the_ttl_at_least_and_the_ttl_at_most(
    catalog: SQLiteCatalog,
) -> None:
    start = 900.0 * 1111  # at the start of a quarter of the TTL
    clock = Clock(start)
    urls = MediaUrls(catalog, TTL, clock)
    signer = await urls.signer(7)
    expiries = set()
    for step in range(0, 3600, 60):
        clock.now = start + step
        expires = signer.expiry()
        assert 0.75 * TTL <= expires - clock.now <= TTL
        expiries.add(expires)
    assert len(expiries) == 4  # the same URL for a quarter of the TTL at a time
    clock.now = 1_000_000.0
    expires = signer.expiry()
    signature = signer.sign(SHA, "original", expires)
    clock.now = expires - 1
    await urls.check(7, SHA, "original", expires, signature)
    clock.now = expires
    assert "expired" in await refused(urls, 7, SHA, "original", expires, signature)


@pytest.mark.gen_test
async def test_a_url_signed_for_longer_than_the_ttl_now_allows_is_refused(
    catalog: SQLiteCatalog,
) -> None:
    clock = Clock(1_000_000.0)
    long_lived = await MediaUrls(catalog, 7 * 24 * 3600.0, clock).signer(7)
    expires = long_lived.expiry()
    signature = long_lived.sign(SHA, "grid", expires)
    await refused(MediaUrls(catalog, TTL, clock), 7, SHA, "grid", expires, signature)


def test_the_key_survives_a_restart(tmp_path: Path, io_loop: tornado.ioloop.IOLoop) -> None:
    settings = Settings(data=tmp_path / "data")

    def signed_then_checked(sign_with: Settings, check_with: Settings) -> None:
        first = build_services(sign_with)
        try:
            signer = io_loop.run_sync(lambda: first.media_urls.signer(1))
            expires = signer.expiry()
            signature = signer.sign(SHA, "preview", expires)
        finally:
            close_within(io_loop, first, CLOSE_TIMEOUT)
        second = build_services(check_with)
        try:
            io_loop.run_sync(lambda: second.media_urls.check(1, SHA, "preview", expires, signature))
        finally:
            close_within(io_loop, second, CLOSE_TIMEOUT)

    signed_then_checked(settings, settings)
    with pytest.raises(errors.ApiError):  # a server with a catalog of its own has its own key
        signed_then_checked(settings, Settings(data=tmp_path / "elsewhere"))


def test_two_services_on_one_postgresql_catalog_share_the_key(
    tmp_path: Path, postgres_url: str, io_loop: tornado.ioloop.IOLoop
) -> None:
    one = build_services(Settings(data=tmp_path / "one", catalog=postgres_url))
    two = build_services(Settings(data=tmp_path / "two", catalog=postgres_url))
    try:
        io_loop.run_sync(one.start)
        io_loop.run_sync(two.start)
        signer = io_loop.run_sync(lambda: one.media_urls.signer(3))
        expires = signer.expiry()
        signature = signer.sign(SHA, "original", expires)
        io_loop.run_sync(lambda: two.media_urls.check(3, SHA, "original", expires, signature))
        assert io_loop.run_sync(one.media_urls.key) == io_loop.run_sync(two.media_urls.key)
    finally:
        close_within(io_loop, one, CLOSE_TIMEOUT)
        close_within(io_loop, two, CLOSE_TIMEOUT)
