"""server/openapi.json: valid OpenAPI 3.1, served as it is, and true to the route table.

The comparison with the route table goes both ways: every URL pattern of make_app has
a path in the spec with exactly the methods its handler implements, and every path and
method in the spec reaches a route whose handler implements it. Adding a route, a
method or a path parameter without documenting it fails here.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import tornado.web
from openapi_spec_validator import OpenAPIV31SpecValidator
from tornado.routing import PathMatches, Rule

from server import __version__
from server.views import API
from tests.conftest import Api

SPEC_FILE = Path(__file__).resolve().parents[1] / "server" / "openapi.json"
HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
PARAMETER = re.compile(r"\{[^/{}]+\}")
# Stands for every path parameter: no literal segment of any route looks like it.
SAMPLE = "p4r4m3t3r"

Spec = dict[str, Any]


def load_spec() -> Spec:
    spec: Spec = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return spec


def implemented(handler: type[tornado.web.RequestHandler]) -> set[str]:
    """The HTTP methods a handler class defines beyond RequestHandler's defaults."""
    base = tornado.web.RequestHandler
    return {
        method
        for method in handler.SUPPORTED_METHODS
        if getattr(handler, method.lower()) is not getattr(base, method.lower())
    }


def path_rules(app: tornado.web.Application) -> list[Rule]:
    """The route table's URL patterns under the API, in order (not the CORS preflight
    rule, which matches any path, nor the default 404 handler, which is not a rule, nor
    the web app's, outside the API: tests/handlers/test_web.py)."""
    rules = app.wildcard_router.rules
    return [
        rule
        for rule in rules
        if isinstance(rule.matcher, PathMatches)
        and rule.matcher.regex.pattern.startswith(API + "/")
    ]


def route_for(rules: list[Rule], path: str) -> Rule | None:
    """The first rule whose pattern matches, as Tornado dispatches."""
    for rule in rules:
        assert isinstance(rule.matcher, PathMatches)
        if rule.matcher.regex.match(path):
            return rule
    return None


def documented_methods(item: dict[str, Any]) -> set[str]:
    return {method.upper() for method in HTTP_METHODS if method in item}


def mismatches(spec: Spec, rules: list[Rule]) -> list[str]:
    """Every way the spec's paths and the route table disagree (empty: they agree)."""
    (server,) = spec["servers"]
    prefix = server["url"]
    problems: list[str] = []
    documented: dict[int, list[str]] = {}
    for path, item in spec["paths"].items():
        concrete = prefix + PARAMETER.sub(SAMPLE, path)
        rule = route_for(rules, concrete)
        if rule is None:
            problems.append(f"{path}: documented, but no route serves it")
            continue
        documented.setdefault(id(rule), []).append(path)
        assert isinstance(rule.matcher, PathMatches)
        groups, parameters = rule.matcher.regex.groups, len(PARAMETER.findall(path))
        if groups != parameters:
            problems.append(f"{path}: {parameters} parameters, route has {groups}")
        handler = rule.target
        assert isinstance(handler, type) and issubclass(handler, tornado.web.RequestHandler)
        served, described = implemented(handler), documented_methods(item)
        for method in sorted(served - described):
            problems.append(f"{method} {path}: {handler.__name__} implements it, undocumented")
        for method in sorted(described - served):
            problems.append(f"{method} {path}: documented, {handler.__name__} does not implement")
    for rule in rules:
        assert isinstance(rule.matcher, PathMatches)
        paths = documented.get(id(rule), [])
        if len(paths) != 1:
            problems.append(f"route {rule.matcher.regex.pattern}: documented as {paths}")
    return problems


# the document itself ----------------------------------------------------------------


def test_the_spec_is_valid_openapi_3_1() -> None:
    spec = load_spec()
    assert spec["openapi"] == "3.1.0"
    errors = [error.message for error in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


def test_the_validator_catches_a_broken_spec() -> None:
    spec = load_spec()
    broken = copy.deepcopy(spec)
    broken["paths"]["/images/{id}"]["get"]["parameters"] = []  # {id} left undeclared
    assert list(OpenAPIV31SpecValidator(broken).iter_errors())


def test_the_spec_names_this_version() -> None:
    assert load_spec()["info"]["version"] == __version__


def test_the_spec_is_relative_to_the_api_prefix() -> None:
    assert load_spec()["servers"] == [{"url": API}]


# the spec against the route table ---------------------------------------------------


def test_the_spec_and_the_route_table_agree(app: tornado.web.Application) -> None:
    rules = path_rules(app)
    assert len(rules) >= 19  # the table is really read
    assert mismatches(load_spec(), rules) == []


def test_an_undocumented_route_is_caught(app: tornado.web.Application) -> None:
    class ExtraHandler(tornado.web.RequestHandler):
        def get(self) -> None: ...

    extra = tornado.web.url(f"{API}/albums", ExtraHandler)
    assert mismatches(load_spec(), [*path_rules(app), extra]) == [
        f"route {API}/albums$: documented as []"
    ]


def test_an_undocumented_method_is_caught(app: tornado.web.Application) -> None:
    spec = load_spec()
    del spec["paths"]["/trash/{id}"]["delete"]
    assert mismatches(spec, path_rules(app)) == [
        "DELETE /trash/{id}: TrashItemHandler implements it, undocumented"
    ]


def test_a_documented_path_or_method_without_a_route_is_caught(
    app: tornado.web.Application,
) -> None:
    spec = load_spec()
    spec["paths"]["/images/{id}"]["put"] = spec["paths"]["/images/{id}"]["get"]
    spec["paths"]["/images/{id}/albums/{album}"] = {"get": {"responses": {}}}
    assert mismatches(spec, path_rules(app)) == [
        "PUT /images/{id}: documented, ImageHandler does not implement",
        "/images/{id}/albums/{album}: documented, but no route serves it",
    ]


def test_a_route_documented_with_the_wrong_parameters_is_caught(
    app: tornado.web.Application,
) -> None:
    spec = load_spec()
    spec["paths"]["/devices/mine"] = spec["paths"].pop("/devices/{id}")
    spec["paths"]["/images/{id}/{what}"] = spec["paths"].pop("/images/{id}/thumbnail")
    assert mismatches(spec, path_rules(app)) == [
        "/devices/mine: 0 parameters, route has 1",
        "/images/{id}/{what}: documented, but no route serves it",
        f"route {API}/images/([^/]+)/thumbnail$: documented as []",
    ]


# what every operation promises ------------------------------------------------------


def resolve(spec: Spec, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations(spec: Spec) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in spec["paths"].items()
        for method in HTTP_METHODS
        if method in item
    ]


ERROR_SCHEMAS = {"#/components/schemas/Error", "#/components/schemas/SeedError"}


def test_every_error_status_is_documented_with_the_error_schema() -> None:
    spec = load_spec()
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400 or method == "head" or path == "/events":
                continue  # HEAD answers have no body; the socket's 400 is Tornado's text
            content = resolve(spec, response).get("content", {})
            assert list(content) == ["application/json"], (method, path, status)
            assert content["application/json"]["schema"]["$ref"] in ERROR_SCHEMAS


def test_the_server_wide_refusals_are_documented() -> None:
    """Any request may be answered 431 (the connection policy answers before any route),
    and a tus creation 429 past the user's budget: the spec says so everywhere."""
    from server import errors

    spec = load_spec()
    text = json.dumps(spec)
    for kind in (errors.HEADERS_TOO_LARGE, errors.TOO_MANY_UPLOADS):
        assert f"`{kind.code}`" in text
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                assert "431" in item[method]["responses"], (method, path)
    creation = spec["paths"]["/uploads/"]["post"]["responses"]["429"]
    assert "too_many_uploads" in creation["description"]


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in operations(load_spec()) if "operationId" in op]
    assert len(ids) == len(set(ids)) == len(operations(load_spec()))


@pytest.mark.gen_test
async def test_the_spec_says_which_calls_need_a_token(anonymous: Api) -> None:
    """Without a token, the public operations answer and every other one is a 401."""
    spec = load_spec()
    for path, method, operation in operations(spec):
        if path == "/events":
            continue  # a WebSocket: it closes with 4401 instead (tests/handlers/test_events.py)
        public = operation.get("security", spec["security"]) == []
        url = API + PARAMETER.sub(SAMPLE, path)
        body = b"" if method in ("post", "patch") else None
        response = await anonymous.fetch(url, method.upper(), body)
        assert (response.code == 401) is not public, (method, path, response.code)
        if not public:
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="tubei"'


# serving it ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_spec_is_served_without_a_token(anonymous: Api) -> None:
    response = await anonymous.fetch(f"{API}/openapi.json")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.body) == load_spec()
