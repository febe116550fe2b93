"""Router: Kong traditional_compatible matching, priorities, strip_path and path_handling."""

from __future__ import annotations

from typing import Any

import pytest

from data_plane.router import RouteMatch, Router, RouterError
from gateway.entities import Ref, Route, Service
from gateway.headers import Headers

SVC = Service(name="svc", host="upstream.test")


def route(name: str, service: Service = SVC, **fields: Any) -> Route:
    return Route(name=name, service=Ref(id=service.id), **fields)


def match(
    router: Router,
    path: str,
    *,
    method: str = "GET",
    host: str = "gw.test",
    headers: dict[str, str] | None = None,
    port: int | None = None,
) -> RouteMatch | None:
    return router.match(method, host, path, Headers((headers or {}).items()), port=port)


def matched_name(router: Router, path: str, **kw: Any) -> str | None:
    found = match(router, path, **kw)
    return None if found is None else found.route.name


# --- paths -----------------------------------------------------------------------------------


def test_plain_path_is_a_prefix_match() -> None:
    router = Router([route("r", paths=["/foo"])], [SVC])
    assert matched_name(router, "/foo") == "r"
    assert matched_name(router, "/foo/bar") == "r"
    assert matched_name(router, "/foobar") == "r"  # Kong's prefixes are not segment-aligned
    assert matched_name(router, "/fo") is None
    assert matched_name(router, "/bar/foo") is None


def test_trailing_slash_prefix_does_not_match_longer_segment() -> None:
    router = Router([route("r", paths=["/foo/"])], [SVC])
    assert matched_name(router, "/foo/x") == "r"
    assert matched_name(router, "/foobar") is None
    assert matched_name(router, "/foo") is None


def test_no_route_matched_returns_none() -> None:
    router = Router([route("r", paths=["/a"], methods=["POST"])], [SVC])
    assert match(router, "/b", method="POST") is None
    assert match(router, "/a", method="GET") is None
    assert match(Router([], []), "/") is None


def test_longest_prefix_wins_whatever_the_order() -> None:
    routes = [
        route("root", paths=["/"]),
        route("short", paths=["/api"]),
        route("long", paths=["/api/v1"]),
    ]
    for order in (routes, routes[::-1]):
        router = Router(order, [SVC])
        assert matched_name(router, "/api/v1/users") == "long"
        assert matched_name(router, "/api/v2") == "short"
        assert matched_name(router, "/other") == "root"


def test_each_path_of_a_route_ranks_by_its_own_length() -> None:
    router = Router([route("multi", paths=["/a", "/b/c/d"]), route("mid", paths=["/b/c"])], [SVC])
    assert matched_name(router, "/b/c/d/e") == "multi"
    assert matched_name(router, "/b/c/x") == "mid"
    assert matched_name(router, "/a/x") == "multi"


def test_regex_path_is_anchored_and_beats_plain_paths() -> None:
    router = Router(
        [route("plain", paths=["/v1/users/profile"]), route("regex", paths=[r"~/v\d+/users"])],
        [SVC],
    )
    assert matched_name(router, "/v1/users/profile") == "regex"
    assert matched_name(router, "/x/v1/users") is None


def test_regex_priority_orders_regex_routes() -> None:
    low = route("low", paths=[r"~/items/\d+"], regex_priority=1)
    high = route("high", paths=[r"~/items/.*"], regex_priority=5)
    negative = route("negative", paths=["~/items"], regex_priority=-3)
    router = Router([low, negative, high], [SVC])
    assert matched_name(router, "/items/42") == "high"
    router = Router([low, negative], [SVC])
    assert matched_name(router, "/items/42") == "low"
    assert matched_name(router, "/items/x") == "negative"


def test_regex_captures_numbered_and_named() -> None:
    router = Router([route("r", paths=[r"~/users/(?P<user>\w+)/(\d+)(/x)?"])], [SVC])
    found = match(router, "/users/ann/7/rest")
    assert found is not None
    assert found.uri_captures == {"0": "/users/ann/7", "1": "ann", "2": "7", "user": "ann"}


def test_pcre_named_groups_are_accepted() -> None:
    # Kong users write PCRE's (?<name>...); lookbehinds must be left alone.
    pcre = route("r", paths=["/placeholder"]).model_copy(
        update={"paths": [r"~/v(?<version>\d+)/(?<!x)(?<=/)(?<rest>.*)"]}
    )
    found = match(Router([pcre], [SVC]), "/v2/chat")
    assert found is not None
    assert found.uri_captures["version"] == "2"
    assert found.uri_captures["rest"] == "chat"


def test_plain_path_has_no_captures() -> None:
    found = match(Router([route("r", paths=["/a"])], [SVC]), "/a/b")
    assert found is not None
    assert found.uri_captures == {}


def test_request_path_is_normalized_before_matching() -> None:
    router = Router([route("c", paths=["/a/c"]), route("b", paths=["/a/b/"])], [SVC])
    assert matched_name(router, "/a/./b/../c") == "c"
    assert matched_name(router, "/%61/%62/") == "b"
    assert matched_name(router, "//a//c") == "c"
    assert matched_name(router, "/a/b/../../a/c?x=/a/b/") == "c"
    found = match(router, "/a/x/../c/%7e/")
    assert found is not None
    assert found.upstream_path == "/~/"


def test_upper_and_lower_case_escapes_match_the_same_route() -> None:
    router = Router([route("r", paths=["/caf%C3%A9"])], [SVC])
    assert matched_name(router, "/caf%c3%a9/menu") == "r"


# --- hosts, methods, headers ------------------------------------------------------------------


def test_hosts_exact_and_case_insensitive() -> None:
    router = Router([route("r", hosts=["api.example.com"])], [SVC])
    assert matched_name(router, "/", host="api.example.com") == "r"
    assert matched_name(router, "/", host="API.Example.com:8000") == "r"
    assert matched_name(router, "/", host="example.com") is None
    assert matched_name(router, "/", host="xapi.example.com") is None


def test_wildcard_hosts() -> None:
    router = Router(
        [route("left", hosts=["*.example.com"]), route("right", hosts=["example.*"])], [SVC]
    )
    assert matched_name(router, "/", host="a.b.example.com") == "left"
    assert matched_name(router, "/", host="example.org") == "right"
    assert matched_name(router, "/", host="example.com") == "right"
    assert matched_name(router, "/", host="notexample.com") is None


def test_host_with_port() -> None:
    router = Router(
        [route("port", hosts=["api.test:8443"]), route("any", hosts=["api.test"], paths=["/x"])],
        [SVC],
    )
    assert matched_name(router, "/", host="api.test:8443") == "port"
    assert matched_name(router, "/", host="api.test", port=8443) == "port"
    assert matched_name(router, "/", host="api.test:8000") is None
    assert matched_name(router, "/", host="api.test") is None
    # A request carrying a port still matches routes that list the bare host.
    assert matched_name(router, "/x", host="api.test:8443") == "any"


def test_wildcard_host_with_port() -> None:
    router = Router([route("r", hosts=["*.test:8443"])], [SVC])
    assert matched_name(router, "/", host="a.test:8443") == "r"
    assert matched_name(router, "/", host="a.test:80") is None


def test_plain_host_beats_wildcard_host() -> None:
    routes = [route("wild", hosts=["*.example.com"]), route("plain", hosts=["api.example.com"])]
    for order in (routes, routes[::-1]):
        router = Router(order, [SVC])
        assert matched_name(router, "/", host="api.example.com") == "plain"
        assert matched_name(router, "/", host="web.example.com") == "wild"


def test_methods() -> None:
    router = Router([route("r", methods=["GET", "POST"])], [SVC])
    assert matched_name(router, "/", method="POST") == "r"
    assert matched_name(router, "/", method="DELETE") is None


def test_headers_names_and_values_or_case_insensitive() -> None:
    router = Router([route("r", headers={"X-Version": ["v1", "V2"], "X-Region": ["EU"]})], [SVC])
    assert matched_name(router, "/", headers={"x-version": "V1", "X-REGION": "eu"}) == "r"
    assert matched_name(router, "/", headers={"X-Version": "v2", "X-Region": "Eu"}) == "r"
    assert matched_name(router, "/", headers={"X-Version": "v3", "X-Region": "eu"}) is None
    assert matched_name(router, "/", headers={"X-Version": "v1"}) is None


def test_header_names_treat_dash_and_underscore_alike() -> None:
    router = Router([route("r", headers={"X_Api_Version": ["2"]})], [SVC])
    assert matched_name(router, "/", headers={"x-api-version": "2"}) == "r"
    assert matched_name(router, "/", headers={"x-api-versio": "2"}) is None


def test_any_value_of_a_repeated_header_matches() -> None:
    router = Router([route("r", headers={"x-tag": ["b"]})], [SVC])
    found = router.match("GET", "gw.test", "/", Headers([("X-Tag", "a"), ("X-Tag", "B")]))
    assert found is not None


def test_header_regex_values() -> None:
    router = Router([route("r", headers={"user-agent": ["~*^curl/\\d"]})], [SVC])
    assert matched_name(router, "/", headers={"User-Agent": "CURL/8.1"}) == "r"
    assert matched_name(router, "/", headers={"User-Agent": "wget"}) is None


def test_invalid_header_regex_raises() -> None:
    with pytest.raises(RouterError, match="invalid regex"):
        Router([route("r", headers={"x": ["~*("]})], [SVC])


def test_more_headers_win() -> None:
    one = route("one", headers={"a": ["1"]}, paths=["/long/path"])
    two = route("two", headers={"a": ["1"], "b": ["2"]}, paths=["/"])
    router = Router([one, two], [SVC])
    assert matched_name(router, "/long/path", headers={"a": "1", "b": "2"}) == "two"
    assert matched_name(router, "/long/path", headers={"a": "1"}) == "one"


def test_more_matching_fields_win_over_longer_path() -> None:
    router = Router(
        [
            route("path", paths=["/api/v1/chat"]),
            route("path-method", paths=["/api"], methods=["POST"]),
            route("path-host-method", paths=["/"], methods=["POST"], hosts=["ai.test"]),
        ],
        [SVC],
    )
    assert matched_name(router, "/api/v1/chat", method="POST", host="ai.test") == (
        "path-host-method"
    )
    assert matched_name(router, "/api/v1/chat", method="POST") == "path-method"
    assert matched_name(router, "/api/v1/chat", method="GET") == "path"


# --- services ----------------------------------------------------------------------------------


def test_routes_of_disabled_missing_or_no_service_are_skipped() -> None:
    disabled = Service(name="off", host="off.test", enabled=False)
    ghost = Service(name="ghost", host="ghost.test")
    routes = [
        route("disabled", service=disabled, paths=["/a/b/c/d"]),
        route("ghost", service=ghost, paths=["/a/b/c"]),
        Route(name="serviceless", paths=["/a/b"]),
        route("fallback", paths=["/a"]),
    ]
    router = Router(routes, [SVC, disabled])
    found = match(router, "/a/b/c/d")
    assert found is not None
    assert found.route.name == "fallback"
    assert found.service == SVC


def test_non_http_routes_are_skipped() -> None:
    grpc = route("grpc", protocols=["grpc", "grpcs"], paths=["/pkg.Svc"], strip_path=False)
    router = Router([grpc, route("http", paths=["/"])], [SVC])
    assert matched_name(router, "/pkg.Svc/Call") == "http"


# --- strip_path and path_handling -------------------------------------------------------------

# Kong's table (devdocs route.md, path_handling), service path /s; the doc's "/s/fv01/" is a typo.
KONG_PATH_TABLE = [
    ("/fv0", False, "v0", "/fv0/req", "/s/fv0/req"),
    ("/fv0", False, "v0", "/fv0", "/s/fv0"),
    ("/fv1", False, "v1", "/fv1/req", "/sfv1/req"),
    ("/fv1", False, "v1", "/fv1", "/sfv1"),
    ("/tv0", True, "v0", "/tv0/req", "/s/req"),
    ("/tv0", True, "v0", "/tv0", "/s"),
    ("/tv1", True, "v1", "/tv1/req", "/s/req"),
    ("/tv1", True, "v1", "/tv1", "/s"),
    ("/fv0/", False, "v0", "/fv0/req", "/s/fv0/req"),
    ("/fv0/", False, "v0", "/fv0/", "/s/fv0/"),
    ("/fv1/", False, "v1", "/fv1/req", "/sfv1/req"),
    ("/fv1/", False, "v1", "/fv1/", "/sfv1/"),
    ("/tv0/", True, "v0", "/tv0/req", "/s/req"),
    ("/tv0/", True, "v0", "/tv0/", "/s/"),
    ("/tv1/", True, "v1", "/tv1/req", "/sreq"),
    ("/tv1/", True, "v1", "/tv1/", "/s"),
]


@pytest.mark.parametrize(
    ("route_path", "strip", "handling", "request_path", "upstream"), KONG_PATH_TABLE
)
def test_kong_path_handling_table(
    route_path: str, strip: bool, handling: str, request_path: str, upstream: str
) -> None:
    svc = Service(name="s", host="up.test", path="/s")
    r = route("r", service=svc, paths=[route_path], strip_path=strip, path_handling=handling)
    found = match(Router([r], [svc]), request_path)
    assert found is not None
    assert found.upstream_path == upstream


@pytest.mark.parametrize(
    ("service_path", "route_path", "strip", "request_path", "upstream", "prefix"),
    [
        (None, "/svc", True, "/svc/path/x", "/path/x", "/svc"),
        (None, "/svc", True, "/svc", "/", "/svc"),
        (None, "/svc", True, "/svc/", "/", "/svc"),
        (None, "/svc", False, "/svc/path", "/svc/path", None),
        (None, "/", True, "/", "/", "/"),
        (None, "/", True, "/a/b/", "/a/b/", "/"),
        ("/base/", "/svc", True, "/svc", "/base", "/svc"),
        ("/base/", "/svc", True, "/svc/", "/base/", "/svc"),
        ("/base/", "/svc", True, "/svc/x", "/base/x", "/svc"),
        ("/base/", "/svc/", True, "/svc/x", "/base/x", "/svc/"),
        ("/base/", "/svc", False, "/svc/x", "/base/svc/x", None),
        ("/base", "/", False, "/", "/base", None),
    ],
)
def test_strip_path_and_service_path_v0(
    service_path: str | None,
    route_path: str,
    strip: bool,
    request_path: str,
    upstream: str,
    prefix: str | None,
) -> None:
    svc = Service(name="s", host="up.test", path=service_path)
    r = route("r", service=svc, paths=[route_path], strip_path=strip)
    found = match(Router([r], [svc]), request_path)
    assert found is not None
    assert (found.upstream_path, found.forwarded_prefix) == (upstream, prefix)


def test_strip_path_removes_the_whole_regex_match() -> None:
    svc = Service(name="s", host="up.test", path="/api")
    r = route("r", service=svc, paths=[r"~/version/\d+/service"])
    found = match(Router([r], [svc]), "/version/1/service/path/to/resource")
    assert found is not None
    assert found.upstream_path == "/api/path/to/resource"
    assert found.forwarded_prefix == "/version/1/service"


def test_route_without_paths_forwards_the_whole_path() -> None:
    svc = Service(name="s", host="up.test", path="/s")
    found = match(Router([route("r", service=svc, hosts=["gw.test"])], [svc]), "/req/x")
    assert found is not None
    assert found.upstream_path == "/s/req/x"
    assert found.forwarded_prefix is None


def test_query_string_is_not_part_of_the_upstream_path() -> None:
    found = match(Router([route("r", paths=["/a"])], [SVC]), "/a/b?c=/d")
    assert found is not None
    assert found.upstream_path == "/b"


# --- compiled indexes keep Kong's order ---------------------------------------------------------


def test_host_specific_and_host_agnostic_routes_interleave_by_priority() -> None:
    agnostic = route("agnostic", paths=["/a"], methods=["GET"], headers={"x": ["1"]})
    hosted = route("hosted", paths=["/a"], hosts=["h.test", "h.test:8443"])
    router = Router([hosted, agnostic], [SVC])
    assert matched_name(router, "/a", host="h.test", headers={"x": "1"}) == "agnostic"
    assert matched_name(router, "/a", host="h.test:8443", headers={"x": "1"}) == "agnostic"
    assert matched_name(router, "/a", host="h.test:8443") == "hosted"
    assert matched_name(router, "/a", host="other.test") is None


def test_prefixes_with_and_without_a_whole_first_segment() -> None:
    router = Router(
        [
            route("o", paths=["/o"]),
            route("open", paths=["/open"]),
            route("openai", paths=["/openai/"]),
            route("openai-v1", paths=["/openai/v1"]),
        ],
        [SVC],
    )
    assert matched_name(router, "/openai/v1/chat") == "openai-v1"
    assert matched_name(router, "/openai/v2") == "openai"
    assert matched_name(router, "/openai") == "open"
    assert matched_name(router, "/openapi/x") == "open"
    assert matched_name(router, "/ollama") == "o"
    assert matched_name(router, "/x/openai/") is None


def test_many_distinct_request_paths_keep_matching() -> None:
    router = Router([route("p", paths=["/p"]), route("q", paths=["/q/"])], [SVC])
    for i in range(5000):
        assert matched_name(router, f"/p{i}/x") == "p"
        assert matched_name(router, f"/q{i}/x") is None
    assert matched_name(router, "/q/1") == "q"


@pytest.mark.parametrize("extra", [0, 12], ids=["few routes", "indexed bucket"])
def test_prefix_kinds_keep_their_order_in_small_and_large_host_buckets(extra: int) -> None:
    # A host's routes are filtered one by one when they are few, indexed by first path
    # segment when many: both give Kong's order.
    hosted = [
        route("o", paths=["/o"], hosts=["h.test"]),
        route("open", paths=["/open"], hosts=["h.test"]),
        route("openai", paths=["/openai/"], hosts=["h.test"]),
        route("openai-v1", paths=["/openai/v1"], hosts=["h.test"]),
        route("regex", paths=["~/openai/v\\d+/models$"], hosts=["h.test"]),
        route("any-path", methods=["DELETE"], hosts=["h.test"]),
        *(route(f"x{i}", paths=[f"/x{i}/"], hosts=["h.test"]) for i in range(extra)),
    ]
    agnostic = route("agnostic", paths=["/openai/v1/chat"], headers={"x": ["1"]}, methods=["GET"])
    router = Router([*hosted, agnostic], [SVC])
    chat = {"headers": {"x": "1"}}
    assert matched_name(router, "/openai/v1/chat", host="h.test", **chat) == "agnostic"
    assert matched_name(router, "/openai/v1/chat", host="h.test") == "openai-v1"
    assert matched_name(router, "/openai/v2/models", host="h.test") == "regex"
    assert matched_name(router, "/openai/v2", host="h.test") == "openai"
    assert matched_name(router, "/openapi/x", host="h.test") == "open"
    assert matched_name(router, "/ollama", host="h.test") == "o"
    assert matched_name(router, "/nothing", host="h.test") is None
    assert matched_name(router, "/nothing", host="h.test", method="DELETE") == "any-path"
    assert matched_name(router, "/openai/v1/chat", host="other.test", **chat) == "agnostic"
    assert matched_name(router, "/openai/v2", host="other.test", **chat) is None
    if extra:
        assert matched_name(router, "/x3/y", host="h.test:8000") == "x3"
        assert matched_name(router, "/x3", host="h.test") is None


@pytest.mark.parametrize("count", [2, 20])
def test_route_with_few_or_many_hosts(count: int) -> None:
    hosts = [f"H{i}.test" for i in range(count)] + ["p.test:8443"]
    router = Router([route("r", paths=["/r"], hosts=hosts)], [SVC])
    for i in range(count):
        assert matched_name(router, "/r", host=f"h{i}.test") == "r"
        assert matched_name(router, "/r", host=f"h{i}.test:8000") == "r"
    assert matched_name(router, "/r", host=f"h{count}.test") is None
    assert matched_name(router, "/r", host="p.test:8443") == "r"
    assert matched_name(router, "/r", host="p.test", port=8443) == "r"
    assert matched_name(router, "/r", host="p.test") is None
