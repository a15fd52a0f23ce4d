"""A stand-in for WeChat's jscode2session on a real local socket.

It checks what a real one checks (the AppID, the AppSecret, the grant type, and
that a code is used once) and answers the way WeChat does, `text/plain` JSON
included. Codes say what to do:

    ok:NAME   -> openid "o-NAME" (once; a second use is errcode 40163);
                 ok:NAME#2, ok:NAME#3... are further codes of the same account
    bad       -> 40029          limit -> 45011          busy -> -1
    risky     -> 40226          slow  -> waits `slow_seconds`, then as ok:slow
    html      -> an HTML page   http500 -> a 500        huge -> 1 MiB of JSON
    noopenid  -> a session_key and no openid
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.testing
import tornado.web

APPID = "wx0123456789abcdef"
SECRET = "fake-appsecret-4f1c9e7a-never-to-be-seen"


def session_key(name: str) -> str:
    return f"SESSION-KEY-{name}-do-not-leak"


@dataclass
class FakeWeChat:
    url: str = ""
    slow_seconds: float = 2.0
    calls: list[dict[str, str]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    server: tornado.httpserver.HTTPServer | None = None

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()
            self.server = None


class Jscode2Session(tornado.web.RequestHandler):
    fake: FakeWeChat

    def initialize(self, fake: FakeWeChat) -> None:
        self.fake = fake

    def answer(self, body: Any) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish(json.dumps(body))

    async def get(self) -> None:
        args = {
            name: self.get_query_argument(name, "")
            for name in ("appid", "secret", "js_code", "grant_type")
        }
        self.fake.calls.append(args)
        if args["grant_type"] != "authorization_code":
            return self.answer({"errcode": 40002, "errmsg": "invalid grant_type"})
        if args["appid"] != APPID:
            return self.answer({"errcode": 40013, "errmsg": "invalid appid"})
        if args["secret"] != SECRET:
            return self.answer({"errcode": 40125, "errmsg": "invalid appsecret"})
        code = args["js_code"]
        errcodes = {"bad": 40029, "limit": 45011, "busy": -1, "risky": 40226}
        if code in errcodes:
            return self.answer({"errcode": errcodes[code], "errmsg": "refused", "rid": "r1"})
        if code == "slow":
            await asyncio.sleep(self.fake.slow_seconds)
            code = "ok:slow"
        if code == "html":
            self.set_header("Content-Type", "text/html")
            return self.finish("<html><body>system busy</body></html>")
        if code == "http500":
            raise tornado.web.HTTPError(500)
        if code == "huge":
            return self.answer({"openid": "o-huge", "padding": "x" * (1024 * 1024)})
        if code == "noopenid":
            return self.answer({"session_key": session_key("none")})
        if not code.startswith("ok:"):
            return self.answer({"errcode": 40029, "errmsg": "invalid code"})
        if code in self.fake.used:
            return self.answer({"errcode": 40163, "errmsg": "code been used"})
        self.fake.used.add(code)
        name = code[3:].split("#", 1)[0]
        return self.answer({"openid": f"o-{name}", "session_key": session_key(name)})


def start_fake_wechat() -> FakeWeChat:
    """Listen on a free port of 127.0.0.1 (call with the test's IOLoop current)."""
    fake = FakeWeChat()
    app = tornado.web.Application(
        [("/sns/jscode2session", Jscode2Session, {"fake": fake})],
        # Its access log would show the secret it was sent: the tests look for that
        # secret in the logs, and only Tubei's own lines may count.
        log_function=lambda handler: None,
    )
    sock, port = tornado.testing.bind_unused_port()
    fake.server = tornado.httpserver.HTTPServer(app)
    fake.server.add_sockets([sock])
    fake.url = f"http://127.0.0.1:{port}"
    return fake
