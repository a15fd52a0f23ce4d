"""Tokens in URLs: only `?token=` spelt so is one, and none reaches the access log."""

from __future__ import annotations

import pytest
import tornado.httputil

from server.handlers.base import blank_tokens, query_token


def request(uri: str) -> tornado.httputil.HTTPServerRequest:
    line = tornado.httputil.RequestStartLine("GET", uri, "HTTP/1.1")
    headers = tornado.httputil.HTTPHeaders({"Host": "t"})
    return tornado.httputil.HTTPServerRequest(start_line=line, headers=headers)


@pytest.mark.parametrize(
    ("uri", "token"),
    [
        ("/events?token=abc", "abc"),
        ("/events?x=1&token=a%2Bb", "a+b"),
        ("/events?%74oken=abc", None),
        ("/events?TOKEN=abc", None),
        ("/events?token=abc&token=abc", None),
        ("/events?token=abc&%74oken=abd", None),
        ("/events", None),
    ],
)
def test_only_the_documented_spelling_is_a_token(uri: str, token: str | None) -> None:
    assert query_token(request(uri)) == token


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        ("/events?token=abc", "/events?token=***"),
        ("/events?%74oken=abc&x=1", "/events?%74oken=***&x=1"),
        ("/events?%54%4F%4B%45%4E=abc", "/events?%54%4F%4B%45%4E=***"),
        ("/events?access_token=abc#f", "/events?access_token=***#f"),
        ("/events?t%6fken=a&tok+en=b", "/events?t%6fken=***&tok+en=b"),
        ("/images?limit=5", "/images?limit=5"),
        ("/images", "/images"),
        # a signed media URL's signature is a credential until it expires
        (
            "/images/ab/thumbnail?size=grid&user=3&expires=9&signature=Zm9v",
            "/images/ab/thumbnail?size=grid&user=3&expires=9&signature=***",
        ),
        ("/images/ab/original?%73ignature=Zm9v", "/images/ab/original?%73ignature=***"),
    ],
)
def test_every_spelling_of_a_token_is_blanked_in_the_log(uri: str, logged: str) -> None:
    assert blank_tokens(uri) == logged
