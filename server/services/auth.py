"""People, their devices' bearer tokens, pairing codes, WeChat login, revocation.

Every token belongs to one device: a row with a name, when it was made, when it
was last seen, and when it was revoked. A token is 32 random bytes; the catalog
keeps only its SHA-256 and finds a token's device by that digest, through a
unique index. That lookup is as good as a constant-time comparison: how long an
index search takes depends on the *digest*, and an attacker who cannot invert
SHA-256 cannot steer the digests of his guesses towards a stored one, so timing
tells him nothing about any token. No token or code is ever compared as text.

Revoking a device refuses its token at once (every request looks its token up)
and announces `device.revoked` on the event hub: the device's own sockets close
(the hub's mailboxes see to that, wherever the hub runs) and the user's other
devices learn of it. A device revoked by another process (`python -m server
revoke`) is noticed by `sweep_revoked`, which the server runs every so often.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass

from .. import errors
from ..catalog import Accounts, Device, User
from .events import DEVICE_REVOKED, EventHub
from .throttle import LocalThrottle, Throttle
from .wechat import WeChatClient

log = logging.getLogger(__name__)

PAIRING_TTL = 600.0
# A 6-digit code lives 10 minutes: without a cap on attempts it can be brute-forced.
PAIRING_ATTEMPTS = 20
PAIRING_ATTEMPT_WINDOW = 60.0
# ...and from everyone together, however many addresses they guess from.
PAIRING_ATTEMPTS_TOTAL = 100
# Wrong guesses a live code outlives (see `pair`).
PAIRING_CODE_GUESSES = 100
# Codes a signed-in user may have waiting at once (made for a browser on a device).
PAIRING_CODES_PER_USER = 3
# A WeChat login costs a call on the AppID's quota; a person needs one a session.
WECHAT_ATTEMPTS = 10
WECHAT_ATTEMPT_WINDOW = 60.0
DEFAULT_USER = "owner"
MAX_DEVICE_NAME = 100
WECHAT_USER_PREFIX = "wx-"


def digest(secret: str) -> str:
    """Tokens and codes are stored only as their SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def wechat_user_names(openid: str) -> list[str]:
    """`wx-` and a short hash of the openid (longer ones should a name be taken)."""
    hashed = hashlib.sha256(openid.encode()).hexdigest()
    return [WECHAT_USER_PREFIX + hashed[:length] for length in (8, 12, 16, 24, 32, 64)]


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
        catalog: Accounts,
        events: EventHub,
        *,
        wechat: WeChatClient | None = None,
        pairing_ttl: float = PAIRING_TTL,
        max_pairing_attempts: int = PAIRING_ATTEMPTS,
        attempt_window: float = PAIRING_ATTEMPT_WINDOW,
        max_pairing_attempts_total: int = PAIRING_ATTEMPTS_TOTAL,
        pairing_code_guesses: int = PAIRING_CODE_GUESSES,
        pairing_codes_per_user: int = PAIRING_CODES_PER_USER,
        max_wechat_attempts: int = WECHAT_ATTEMPTS,
        pairing_throttle: Throttle | None = None,
        wechat_throttle: Throttle | None = None,
    ) -> None:
        self._catalog = catalog
        self._events = events
        self._wechat = wechat
        self._pairing_ttl = pairing_ttl
        self._pairing_attempts: Throttle = pairing_throttle or LocalThrottle(
            max_pairing_attempts, attempt_window, max_pairing_attempts_total
        )
        self._code_guesses = pairing_code_guesses
        self._codes_per_user = pairing_codes_per_user
        self._wechat_attempts: Throttle = wechat_throttle or LocalThrottle(
            max_wechat_attempts, WECHAT_ATTEMPT_WINDOW
        )

    @property
    def wechat_enabled(self) -> bool:
        return self._wechat is not None

    def close(self) -> None:
        if self._wechat is not None:
            self._wechat.close()

    # tokens ----------------------------------------------------------------------

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

    # pairing ---------------------------------------------------------------------

    async def create_pairing_code(self, user_name: str = DEFAULT_USER) -> PairingCode:
        """A code for the admin's `pair` command: no budget (it is the server's owner)."""
        return await self._new_code(await self._catalog.ensure_user(user_name))

    async def pairing_code_for(self, user: User) -> PairingCode:
        """A code a signed-in device asks for, to sign another one (a browser) in as the
        same user: `pairing_codes_per_user` may wait at once, or 429 until the soonest
        expires. The catalog counts and adds in one step, so that requests at once, to
        this process or others sharing the catalog, never leave more waiting.
        """
        return await self._new_code(user, self._codes_per_user)

    async def _new_code(self, user: User, max_waiting: int | None = None) -> PairingCode:
        expires_at = time.time() + self._pairing_ttl
        while True:
            code = f"{secrets.randbelow(10**6):06d}"
            if await self._catalog.add_pairing_code(digest(code), user.id, expires_at, max_waiting):
                return PairingCode(code, user, expires_at)
            if max_waiting is None:
                continue  # the code was taken: another one
            waiting = await self._catalog.live_pairing_codes(user.id, time.time())
            if len(waiting) >= max_waiting:
                retry = max(1, math.ceil(waiting[0] - time.time()))
                raise errors.ApiError(errors.TOO_MANY_PAIRING_CODES, retry_after=retry)
            # The code was taken, or a place has been freed since: another one.

    async def pair(self, code: str, device: str, *, address: str) -> Issued:
        """A one-time code for a token; `address` is the client's, for the throttle.

        A wrong guess is a guess against every live code (a 6-digit code names no
        code in particular), so each wrong guess counts against all of them, in the
        catalog; a code that has outlived `pairing_code_guesses` of them is void.
        Whatever the rate, a guesser then has at most that many tries per code:
        with 100, a chance of 1 in 10,000 of any one code, after which its owner
        makes a new one.
        """
        # Counted before the lookup, so that concurrent guesses cannot slip past the cap;
        # once over it, every code from this client is refused, right ones included.
        await self._pairing_attempts.attempt(address)
        user = None
        well_formed = len(code) == 6 and code.isdigit()
        if well_formed:
            user = await self._catalog.redeem_pairing_code(digest(code), time.time())
        if user is None:
            if well_formed:
                voided = await self._catalog.pairing_guess_failed(time.time(), self._code_guesses)
                if voided:
                    log.warning(
                        "%d pairing code(s) voided after %d wrong guesses: make a new one "
                        "(python -m server pair)",
                        voided,
                        self._code_guesses,
                    )
            raise errors.ApiError(errors.INVALID_PAIRING_CODE)
        return await self._issue(user, device)

    # WeChat ----------------------------------------------------------------------

    async def wechat_login(self, code: str, device: str, *, address: str) -> Issued:
        """A `wx.login` code for a token of the user this WeChat account maps to."""
        if self._wechat is None:
            raise errors.ApiError(errors.WECHAT_LOGIN_DISABLED)
        await self._wechat_attempts.attempt(address)
        identity = await self._wechat.code_to_session(code)
        user = await self._catalog.wechat_user(identity.openid, wechat_user_names(identity.openid))
        return await self._issue(user, device)

    # devices ---------------------------------------------------------------------

    async def devices(self, user: User) -> list[Device]:
        return [device for _, device in await self._catalog.devices(user.id)]

    async def all_devices(self, user_name: str | None = None) -> list[tuple[User, Device]]:
        """Everyone's devices, or one user's (none when there is no such user)."""
        if user_name is None:
            return await self._catalog.devices()
        user = await self._catalog.find_user(user_name)
        return [] if user is None else await self._catalog.devices(user.id)

    async def revoke(self, device_id: int, owner: User | None) -> Device:
        """Revoke a device of `owner`'s (any device when owner is None, for the admin)."""
        device = await self._catalog.revoke_device(
            device_id, None if owner is None else owner.id, time.time()
        )
        if device is None:
            raise errors.ApiError(errors.DEVICE_NOT_FOUND)
        self.announce_revoked(device)
        return device

    def announce_revoked(self, device: Device) -> None:
        self._events.publish(device.user_id, {"type": DEVICE_REVOKED, "device_id": device.id})

    async def sweep_revoked(self) -> list[Device]:
        """Close the sockets of devices that another process revoked."""
        connected = self._events.connected_devices()
        if not connected:
            return []
        revoked = await self._catalog.revoked_devices(connected)
        for device in revoked:
            self.announce_revoked(device)
        return revoked
