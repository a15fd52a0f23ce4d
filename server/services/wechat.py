"""WeChat mini-program login: a `wx.login` code -> `jscode2session` -> an openid.

The server calls `GET {api}/sns/jscode2session?appid&secret&js_code&grant_type`
and keeps only the openid. The answer's `session_key` (which would let anyone
who holds it forge the user's encrypted WeChat data) is dropped on the spot: it
is never stored, logged or sent on. The AppSecret travels only in that one
request, and nothing here logs a URL or an error text that could contain it.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from dataclasses import dataclass

import tornado.httpclient

from .. import errors

log = logging.getLogger(__name__)

TIMEOUT = 10.0
MAX_ANSWER = 64 * 1024
MAX_CODE = 256

# https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html
INVALID_CODE = {40029, 40163}  # invalid code; code already used
RATE_LIMITED = 45011
HIGH_RISK_USER = 40226
BUSY = -1
RATE_LIMIT_WAIT = 60


@dataclass(frozen=True)
class WeChatIdentity:
    openid: str


def valid_code(code: str) -> bool:
    """A `wx.login` code is short printable ASCII; anything else is not worth a call."""
    return 0 < len(code) <= MAX_CODE and code.isascii() and code.isprintable() and " " not in code


def describe(error: Exception) -> str:
    """What went wrong, in words that cannot carry the request's URL (or its secret)."""
    if isinstance(error, tornado.httpclient.HTTPClientError):
        return f"HTTP {error.code}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


class WeChatClient:
    def __init__(self, appid: str, secret: str, api: str, *, timeout: float = TIMEOUT) -> None:
        self.appid = appid
        self._secret = secret
        self._endpoint = api.rstrip("/") + "/sns/jscode2session"
        self._timeout = timeout
        self._http: tornado.httpclient.AsyncHTTPClient | None = None

    def __repr__(self) -> str:
        return f"WeChatClient(appid={self.appid!r}, endpoint={self._endpoint!r})"

    def _client(self) -> tornado.httpclient.AsyncHTTPClient:
        # Made on first use, inside the running loop; its own instance, so that its
        # answer-size cap does not change anyone else's client.
        if self._http is None:
            self._http = tornado.httpclient.AsyncHTTPClient(
                force_instance=True, max_body_size=MAX_ANSWER
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    async def code_to_session(self, code: str) -> WeChatIdentity:
        """The openid behind a `wx.login` code, or an ApiError that says why not."""
        if not valid_code(code):
            raise errors.ApiError(errors.INVALID_WECHAT_CODE)
        query = urllib.parse.urlencode(
            {
                "appid": self.appid,
                "secret": self._secret,
                "js_code": code,
                "grant_type": "authorization_code",
            }
        )
        request = tornado.httpclient.HTTPRequest(
            f"{self._endpoint}?{query}",
            connect_timeout=self._timeout,
            request_timeout=self._timeout,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        try:
            response = await self._client().fetch(request)
        except Exception as error:  # unreachable, timeout, TLS, HTTP error, too big
            log.warning("WeChat jscode2session failed: %s", describe(error))
            raise errors.ApiError(errors.WECHAT_UNAVAILABLE) from None
        return self._identity(response.body)

    def _identity(self, body: bytes) -> WeChatIdentity:
        try:
            answer = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            log.warning("WeChat jscode2session answered something that is not a JSON object")
            raise errors.ApiError(errors.WECHAT_UNAVAILABLE)
        errcode = answer.get("errcode", 0)
        if errcode in INVALID_CODE:
            raise errors.ApiError(errors.INVALID_WECHAT_CODE)
        if errcode == RATE_LIMITED:
            raise errors.ApiError(errors.WECHAT_RATE_LIMITED, retry_after=RATE_LIMIT_WAIT)
        if errcode == HIGH_RISK_USER:
            raise errors.ApiError(errors.WECHAT_LOGIN_REFUSED)
        if errcode != 0:
            # -1 (busy), or this server's appid/secret refused (40013, 40125...).
            level = logging.WARNING if errcode == BUSY else logging.ERROR
            log.log(level, "WeChat jscode2session refused: errcode %r", errcode)
            raise errors.ApiError(errors.WECHAT_UNAVAILABLE)
        openid = answer.get("openid")
        if not isinstance(openid, str) or not 0 < len(openid) <= 128:
            log.warning("WeChat jscode2session answered without an openid")
            raise errors.ApiError(errors.WECHAT_UNAVAILABLE)
        return WeChatIdentity(openid)
