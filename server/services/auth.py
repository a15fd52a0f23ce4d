"""People, their devices' bearer tokens, and one-time pairing codes."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from dataclasses import dataclass

from .. import errors
from ..catalog import Catalog, Device, User

PAIRING_TTL = 600.0
# A 6-digit code lives 10 minutes: without a cap on attempts it can be brute-forced.
PAIRING_ATTEMPTS = 20
PAIRING_ATTEMPT_WINDOW = 60.0
DEFAULT_USER = "owner"
MAX_DEVICE_NAME = 100


def digest(secret: str) -> str:
    """Tokens and codes are stored only as their SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    token: str
    user: User
    device: Device


@dataclass(frozen=True)
class PairingCode:
    code: str
    user: User
    expires_at: float


def clean_device_name(name: object) -> str:
    text = "".join(ch for ch in str(name or "") if ch.isprintable()).strip()
    return text[:MAX_DEVICE_NAME] or "unnamed device"


class AuthService:
    def __init__(
        self,
        catalog: Catalog,
        pairing_ttl: float = PAIRING_TTL,
        max_pairing_attempts: int = PAIRING_ATTEMPTS,
        attempt_window: float = PAIRING_ATTEMPT_WINDOW,
    ) -> None:
        self._catalog = catalog
        self._pairing_ttl = pairing_ttl
        self._max_attempts = max_pairing_attempts
        self._attempt_window = attempt_window
        self._attempts: deque[float] = deque()

    async def issue_token(self, user_name: str, device: str) -> Issued:
        user = await self._catalog.ensure_user(user_name)
        return await self._issue(user, device)

    async def _issue(self, user: User, device: str) -> Issued:
        token = secrets.token_urlsafe(32)
        record = await self._catalog.add_token(user.id, digest(token), clean_device_name(device))
        return Issued(token, user, record)

    async def authenticate(self, token: str) -> tuple[User, Device] | None:
        if not token or len(token) > 256:
            return None
        return await self._catalog.user_for_token(digest(token))

    async def create_pairing_code(self, user_name: str = DEFAULT_USER) -> PairingCode:
        user = await self._catalog.ensure_user(user_name)
        expires_at = time.time() + self._pairing_ttl
        while True:
            code = f"{secrets.randbelow(10**6):06d}"
            if await self._catalog.add_pairing_code(digest(code), user.id, expires_at):
                return PairingCode(code, user, expires_at)

    async def pair(self, code: str, device: str) -> Issued:
        now = time.monotonic()
        while self._attempts and self._attempts[0] <= now - self._attempt_window:
            self._attempts.popleft()
        if len(self._attempts) >= self._max_attempts:
            # Too many attempts lately: refuse every code, right ones included.
            wait = self._attempts[0] + self._attempt_window - now
            raise errors.ApiError(errors.TOO_MANY_ATTEMPTS, retry_after=max(1, round(wait)))
        # Counted before the lookup, so that concurrent guesses cannot slip past the cap.
        self._attempts.append(now)
        user = None
        if len(code) == 6 and code.isdigit():
            user = await self._catalog.redeem_pairing_code(digest(code), time.time())
        if user is None:
            raise errors.ApiError(errors.INVALID_PAIRING_CODE)
        return await self._issue(user, device)
