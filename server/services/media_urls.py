"""Signed media URLs: proof, for a while, that one user may fetch one file of one blob.

`<image>`, `<video>`, `previewImage` and `previewMedia` in a mini-program send no
headers, so a bearer token cannot go with them, and a token must never go in a URL
(URLs are logged, cached, shared). Instead each image's JSON carries URLs signed with
HMAC-SHA256 under one random server key, over the user, the blob's sha256, the
variant (original, grid, preview, video_preview or motion_video) and the expiry; the
file handlers take a valid signature in place of the token.

The key is made once and kept in the catalog (`Keys`), so every process sharing a
PostgreSQL catalog signs and checks with the same one, and a restart keeps the URLs it
issued working. An expiry is rounded down to a quarter of the TTL: a URL lives
between three quarters of --media-url-ttl and all of it, and the URLs of one photo stay
the same for that quarter, so caches keyed by URL keep working across listings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .. import errors
from ..catalog import Keys

KEY_NAME = "media-urls"
KEY_BYTES = 32
Variant = Literal["original", "grid", "preview", "video_preview", "motion_video"]
VARIANTS: tuple[Variant, ...] = ("original", "grid", "preview", "video_preview", "motion_video")


def _mac(key: bytes, user_id: int, sha256: str, variant: str, expires: int) -> str:
    message = f"tubei-media-url/1\n{user_id}\n{sha256}\n{variant}\n{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class UserSigner:
    """Signs URLs for one user's files; each `expiry()` is taken from the clock then."""

    key: bytes
    user_id: int
    ttl: float
    clock: Callable[[], float]

    def expiry(self) -> int:
        quarter = max(1.0, self.ttl / 4)
        return int((self.clock() + self.ttl) // quarter * quarter)

    def sign(self, sha256: str, variant: Variant, expires: int) -> str:
        return _mac(self.key, self.user_id, sha256, variant, expires)


class MediaUrls:
    """The key (loaded from the catalog once), signing and checking."""

    def __init__(self, keys: Keys, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self.ttl = ttl
        self._clock = clock
        self._key: bytes | None = None
        self._loading: asyncio.Lock | None = None

    async def key(self) -> bytes:
        if self._key is None:
            if self._loading is None:
                self._loading = asyncio.Lock()
            async with self._loading:
                if self._key is None:
                    candidate = secrets.token_bytes(KEY_BYTES)
                    self._key = await self._keys.server_key(KEY_NAME, candidate, self._clock())
        return self._key

    async def signer(self, user_id: int) -> UserSigner:
        return UserSigner(await self.key(), user_id, self.ttl, self._clock)

    async def check(
        self, user_id: int, sha256: str, variant: Variant, expires: int, signature: str
    ) -> None:
        """Nothing if `signature` is this server's for exactly these, and live;
        else ApiError(SIGNED_URL_INVALID), saying which."""
        expected = _mac(await self.key(), user_id, sha256, variant, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise errors.ApiError(errors.SIGNED_URL_INVALID)
        now = self._clock()
        if expires <= now:
            raise errors.ApiError(
                errors.SIGNED_URL_INVALID,
                "This media URL has expired: fetch the image again for fresh URLs.",
            )
        if expires > now + self.ttl:
            # Signed under a longer --media-url-ttl than the server now gives.
            raise errors.ApiError(
                errors.SIGNED_URL_INVALID,
                "This media URL lives longer than the server now allows: fetch the image again.",
            )
