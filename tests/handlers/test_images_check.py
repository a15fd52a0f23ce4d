"""The image API's check: which photos the library already has."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import Api
from tests.handlers.helpers import assert_json_error, photo, sha256, upload_one
from tests.handlers.image_api import CHECK, IMAGES, SHA

# check -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_check_by_sha256(api: Api) -> None:
    have = [photo(), photo()]
    for data in have:
        await upload_one(api, data)
    unknown = sha256(b"never uploaded")
    asked = [sha256(have[0]), unknown, sha256(have[1]).upper(), sha256(have[0])]
    code, body = await api.json(CHECK, "POST", {"sha256": asked})
    assert code == 200, body
    assert body == {"present": [sha256(have[0]), sha256(have[1])], "missing": [unknown]}


@pytest.mark.gen_test
async def test_check_by_md5(api: Api) -> None:
    data = photo()
    await upload_one(api, data)
    md5 = hashlib.md5(data).hexdigest()
    unknown = hashlib.md5(b"never uploaded").hexdigest()
    code, body = await api.json(CHECK, "POST", {"md5": [unknown, md5.upper()]})
    assert code == 200, body
    assert body == {"present": [md5], "missing": [unknown]}
    code, body = await api.json(CHECK, "POST", {"md5": []})
    assert (code, body) == (200, {"present": [], "missing": []})


@pytest.mark.gen_test
async def test_check_sees_only_my_library(api: Api, other_api: Api) -> None:
    mine, theirs, trashed = photo(), photo(), photo()
    await upload_one(api, mine)
    await upload_one(other_api, theirs)
    await upload_one(api, trashed)
    code, _ = await api.json(f"{IMAGES}/{sha256(trashed)}", "DELETE")
    assert code == 200
    for field, digest in (("sha256", sha256), ("md5", lambda b: hashlib.md5(b).hexdigest())):
        asked = [digest(mine), digest(theirs), digest(trashed)]
        code, body = await api.json(CHECK, "POST", {field: asked})
        assert code == 200, body
        assert body == {"present": [digest(mine)], "missing": [digest(theirs), digest(trashed)]}
        code, body = await other_api.json(CHECK, "POST", {field: asked})
        assert body == {"present": [digest(theirs)], "missing": [digest(mine), digest(trashed)]}


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("raw", "error_code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[]", "invalid_json"),
        (b'"sha256"', "invalid_json"),
        (b"null", "invalid_json"),
        (json.dumps({"sha256": [SHA], "md5": ["a" * 32]}).encode(), "invalid_argument"),
        (b"{}", "invalid_argument"),
        (json.dumps({"sha1": ["a" * 40]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": SHA}).encode(), "invalid_argument"),
        (json.dumps({"sha256": {SHA: True}}).encode(), "invalid_argument"),
        (json.dumps({"md5": None}).encode(), "invalid_argument"),
        (json.dumps({"sha256": ["z" * 64]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": ["a" * 63]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": ["a" * 32]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": [SHA + "\n"]}).encode(), "invalid_argument"),
        (json.dumps({"md5": ["a" * 64]}).encode(), "invalid_argument"),
        (json.dumps({"md5": ["g" * 32]}).encode(), "invalid_argument"),
        (json.dumps({"md5": [123]}).encode(), "invalid_argument"),
        (json.dumps({"sha256": [SHA] * 5001}).encode(), "invalid_argument"),
    ],
)
async def test_check_bad_bodies(api: Api, raw: bytes, error_code: str) -> None:
    response = await api.fetch(CHECK, "POST", raw, {"Content-Type": "application/json"})
    assert_json_error(response, 400, error_code)
