"""A file request authenticated by a signed media URL instead of a bearer token.

The URL's query carries `user`, `expires` and `signature` (built by `views.signed_urls`),
each once and spelt exactly so; with the path's image id and the variant the route
serves, the signature must be the server's (`services.media_urls`). Anything else, a
missing, repeated or malformed part included, is 403 `signed_url_invalid`.
"""

from __future__ import annotations

import re
import urllib.parse

import tornado.httputil

from .. import errors
from ..catalog import User
from ..services import Services
from ..services.media_urls import Variant

PARTS = ("user", "expires", "signature")
DIGITS = re.compile(r"[0-9]{1,18}")
SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")


def signed_parts(request: tornado.httputil.HTTPServerRequest) -> dict[str, str] | None:
    """The signed URL's parts; None when the URL is not a signed one at all."""
    found: dict[str, list[str]] = {}
    for part in request.query.split("&"):
        name, _, value = part.partition("=")
        plain = urllib.parse.unquote_plus(name)
        if plain.lower() in PARTS:
            if name != plain.lower():
                raise errors.ApiError(errors.SIGNED_URL_INVALID)
            found.setdefault(name, []).append(urllib.parse.unquote_plus(value))
    if "signature" not in found:
        return None
    if any(len(found.get(name, [])) != 1 for name in PARTS):
        raise errors.ApiError(errors.SIGNED_URL_INVALID)
    return {name: found[name][0] for name in PARTS}


async def signed_user(
    services: Services, parts: dict[str, str], image_id: str, variant: Variant | None
) -> User:
    """Whom the signature speaks for, once it is checked."""
    user_id, expires, signature = parts["user"], parts["expires"], parts["signature"]
    if variant is None or not (
        DIGITS.fullmatch(user_id) and DIGITS.fullmatch(expires) and SIGNATURE.fullmatch(signature)
    ):
        raise errors.ApiError(errors.SIGNED_URL_INVALID)
    await services.media_urls.check(int(user_id), image_id, variant, int(expires), signature)
    user = await services.catalog.get_user(int(user_id))
    if user is None:
        raise errors.ApiError(errors.SIGNED_URL_INVALID)
    return user
