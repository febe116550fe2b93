"""The router (`data_plane.router`) against a small, obviously-correct model of Kong's rules.

The model (`_Model`) tries every (route, path) pair of a configuration in turn, keeps those
whose every configured field matches the request, and ranks them with Kong's
traditional_compatible priority (reference/kong-hybrid.md §5): match weight, plain-hosts-only,
number of headers, regex (by `regex_priority`) before plain paths, longest plain path. The
router must answer with a route of the top rank (ties between equal ranks may go either way),
or with nothing when no route matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from data_plane.paths import normalize_path
from data_plane.router import Router
from gateway.entities import Ref, Route, Service
from gateway.headers import Headers
from tests.property.bounded import bounded

SVC = Service(name="svc", host="upstream.test")
OFF = Service(name="off", host="off.test", enabled=False)

# -- the request and route vocabularies: small, so that generated routes and requests collide --

SEGMENTS = ("a", "b", "ab", "v1", "v2", "x")
PLAIN_PATHS = ("/", "/a", "/a/", "/ab", "/a/b", "/a/b/", "/b", "/v1", "/v1/a", "/ab/x", "/x/")
# (as a route writes it, as Python's `re` reads it)
REGEX_PATHS = (
    ("~/a+$", r"/a+$"),
    (r"~/(?<ver>v\d)/", r"/(?P<ver>v\d)/"),
    ("~/b", r"/b"),
    ("~/ab?/a", r"/ab?/a"),
    (r"~/x/(?<rest>.+)", r"/x/(?P<rest>.+)"),
)
# Request paths each regex matches (for requests aimed at a route).
REGEX_EXAMPLES = {
    "~/a+$": ("/a", "/aa"),
    r"~/(?<ver>v\d)/": ("/v1/", "/v2/a"),
    "~/b": ("/b", "/b/x", "/bab"),
    "~/ab?/a": ("/a/a", "/ab/a", "/ab/ab"),
    r"~/x/(?<rest>.+)": ("/x/a", "/x/ab/v1"),
}
ROUTE_HOSTS = ("a.test", "*.a.test", "a.*", "*.test", "a.test:8000", "*.a.test:8443", "b.a.test")
REQUEST_HOSTS = ("a.test", "b.a.test", "A.Test", "a.other", "c.b.a.test", "other")
ROUTE_METHODS = ("GET", "POST", "PUT")
REQUEST_METHODS = ("GET", "POST", "PUT", "DELETE")
ROUTE_HEADER_NAMES = ("X-Env", "x_team")
ROUTE_HEADER_VALUES = ("prod", "DEV", "~*^d", "~*x$")
REQUEST_HEADER_NAMES = ("x-env", "X_ENV", "X-Team", "x-team", "other")
REQUEST_HEADER_VALUES = ("prod", "Prod", "dev", "box", "none")


def _header_key(name: str) -> str:
    return name.lower().replace("_", "-")


def _split(host: str) -> tuple[str, str | None]:
    name, sep, port = host.rpartition(":")
    return (name, port) if sep and port.isdigit() else (host, None)


@dataclass(frozen=True)
class _Request:
    method: str
    host: str
    port: int | None
    path: str
    headers: tuple[tuple[str, str], ...]


class _Model:
    """Kong's matching and priority, spelled out one rule at a time."""

    def __init__(self, routes: list[Route], services: list[Service]) -> None:
        enabled = {s.id for s in services if s.enabled}
        self.routes = [
            r
            for r in routes
            if r.service is not None
            and r.service.id in enabled
            and {"http", "https"} & set(r.protocols)
        ]

    def ranked(self, req: _Request) -> dict[str, tuple[int, ...]]:
        """Name of each matching route -> its best rank (higher wins)."""
        out: dict[str, tuple[int, ...]] = {}
        for route in self.routes:
            if not self._fields_match(route, req):
                continue
            weight = sum(1 for f in (route.methods, route.hosts, route.headers, route.paths) if f)
            plain_hosts = int(route.hosts is not None and not any("*" in h for h in route.hosts))
            common = (weight, plain_hosts, len(route.headers or {}))
            ranks = []
            if not route.paths:
                ranks.append((*common, 0, 0, 0))
            for path in route.paths or ():
                if path.startswith("~"):
                    if re.match(_python_regex(path), req.path):
                        ranks.append((*common, 1, route.regex_priority, 0))
                elif req.path.startswith(path):
                    ranks.append((*common, 0, 0, len(path)))
            if ranks:
                assert route.name is not None
                out[route.name] = max(ranks)
        return out

    def _fields_match(self, route: Route, req: _Request) -> bool:
        if route.methods and req.method not in route.methods:
            return False
        if route.hosts and not any(_host_matches(h, req) for h in route.hosts):
            return False
        for name, values in (route.headers or {}).items():
            sent = [v.lower() for n, v in req.headers if _header_key(n) == _header_key(name)]
            if not any(_header_value_matches(v, s) for v in values for s in sent):
                return False
        return True


def _host_matches(route_host: str, req: _Request) -> bool:
    name, want_port = _split(route_host.lower())
    hostname, port = _split(req.host.lower())
    if port is None and req.port is not None:
        port = str(req.port)
    if want_port is not None and want_port != port:
        return False
    if name.startswith("*"):
        return hostname.endswith(name[1:])
    if name.endswith("*"):
        return hostname.startswith(name[:-1])
    return hostname == name


def _header_value_matches(route_value: str, sent: str) -> bool:
    if route_value.startswith("~*"):
        return re.search(route_value[2:], sent, re.IGNORECASE) is not None
    return route_value.lower() == sent


def _python_regex(kong_path: str) -> str:
    return dict(REGEX_PATHS)[kong_path]


# -- strategies --


def _paths() -> st.SearchStrategy[list[str] | None]:
    one = st.one_of(st.sampled_from(PLAIN_PATHS), st.sampled_from([k for k, _ in REGEX_PATHS]))
    return st.none() | st.lists(one, min_size=1, max_size=3, unique=True)


@st.composite
def _routes(draw: st.DrawFn) -> list[Route]:
    count = draw(st.integers(1, 7))
    routes = []
    for i in range(count):
        service = draw(st.sampled_from([SVC] * 9 + [OFF]))
        protocols = draw(st.sampled_from([["http", "https"]] * 9 + [["grpc"]]))
        routes.append(
            Route(
                name=f"r{i}",
                service=Ref(id=service.id),
                protocols=protocols,
                paths=draw(_paths()),
                methods=draw(
                    st.none() | st.lists(st.sampled_from(ROUTE_METHODS), min_size=1, unique=True)
                ),
                hosts=draw(
                    st.none()
                    | st.lists(st.sampled_from(ROUTE_HOSTS), min_size=1, max_size=3, unique=True)
                ),
                headers=draw(
                    st.none()
                    | st.dictionaries(
                        st.sampled_from(ROUTE_HEADER_NAMES),
                        st.lists(st.sampled_from(ROUTE_HEADER_VALUES), min_size=1, max_size=2),
                        min_size=1,
                    )
                ),
                regex_priority=draw(st.integers(-1, 2)),
            )
        )
    return routes


@st.composite
def _requests(draw: st.DrawFn) -> _Request:
    segments = draw(st.lists(st.sampled_from(SEGMENTS), max_size=4))
    path = "/" + "/".join(segments) + draw(st.sampled_from(["", "/"]))
    path = "/" if path == "//" else path
    host = draw(st.sampled_from(REQUEST_HOSTS)) + draw(st.sampled_from(["", ":8000", ":8443"]))
    return _Request(
        method=draw(st.sampled_from(REQUEST_METHODS)),
        host=host,
        port=draw(st.sampled_from([None, 8000])),
        path=path,
        headers=tuple(
            draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(REQUEST_HEADER_NAMES),
                        st.sampled_from(REQUEST_HEADER_VALUES),
                    ),
                    max_size=3,
                )
            )
        ),
    )


@st.composite
def _aimed(draw: st.DrawFn, route: Route) -> _Request:
    """A request that `route`'s own fields match (other routes may match it too: a contest)."""
    method = draw(st.sampled_from(route.methods or REQUEST_METHODS))
    host = draw(st.sampled_from(REQUEST_HOSTS))
    if route.hosts:
        name, port = _split(draw(st.sampled_from(route.hosts)))
        if name.startswith("*"):
            name = draw(st.sampled_from(["b", "c.b"])) + name[1:]
        elif name.endswith("*"):
            name += draw(st.sampled_from(["test", "other"]))
        host = name if port is None else f"{name}:{port}"
    path = draw(_requests()).path
    if route.paths:
        chosen = draw(st.sampled_from(route.paths))
        if chosen.startswith("~"):
            path = draw(st.sampled_from(REGEX_EXAMPLES[chosen]))
        else:
            suffix = draw(st.sampled_from(["", "b", "/b", "x/", "/v1/a"]))
            path = chosen + (suffix[1:] if chosen.endswith("/") and suffix[:1] == "/" else suffix)
    headers = []
    for name, values in (route.headers or {}).items():
        value = draw(st.sampled_from(values))
        text = {"~*^d": "dev", "~*x$": "box"}.get(value, value)
        spelled = draw(st.sampled_from([name, name.upper(), name.replace("_", "-")]))
        headers.append((spelled, draw(st.sampled_from([text, text.upper()]))))
    headers += draw(
        st.lists(
            st.tuples(
                st.sampled_from(REQUEST_HEADER_NAMES), st.sampled_from(REQUEST_HEADER_VALUES)
            ),
            max_size=2,
        )
    )
    return _Request(method, host, draw(st.sampled_from([None, 8000])), path, tuple(headers))


def _route_match(router: Router, req: _Request, path: str | None = None) -> str | None:
    found = router.match(
        req.method, req.host, req.path if path is None else path, Headers(req.headers), req.port
    )
    return None if found is None else found.route.name


@bounded(120)
@given(routes=_routes(), data=st.data())
def test_router_picks_a_top_ranked_matching_route(routes: list[Route], data: st.DataObject) -> None:
    router = Router(routes, [SVC, OFF])
    model = _Model(routes, [SVC, OFF])
    requests = [data.draw(_requests())]
    requests += [data.draw(_aimed(route)) for route in routes]
    for req in requests:
        ranked = model.ranked(req)
        got = _route_match(router, req)
        if not ranked:
            assert got is None, (req, got)
            continue
        best = max(ranked.values())
        assert got is not None, (req, ranked)
        assert ranked.get(got) == best, (req, got, ranked)


@bounded(80)
@given(routes=_routes(), req=_requests())
def test_regex_captures_are_the_regex_groups(routes: list[Route], req: _Request) -> None:
    found = Router(routes, [SVC]).match(
        req.method, req.host, req.path, Headers(req.headers), req.port
    )
    if found is None or not found.uri_captures:
        return
    regexes = [p for p in found.route.paths or () if p.startswith("~")]
    matches = [m for p in regexes if (m := re.match(_python_regex(p), req.path))]
    assert any(
        found.uri_captures.get("0") == m.group(0)
        and all(found.uri_captures.get(k) == v for k, v in m.groupdict().items() if v)
        for m in matches
    ), (req, found.uri_captures)


# A wider alphabet for plain prefixes: unreserved punctuation, escapes, dot segments.
_PIECES = st.sampled_from(["a", "b", "c", "-", "~", "_", ".x", "%41", "%2F", "%2f"])


def _segment(min_size: int) -> st.SearchStrategy[str]:
    return st.lists(_PIECES, min_size=min_size, max_size=3).map("".join)


@st.composite
def _prefixes(draw: st.DrawFn) -> str:
    segments = draw(st.lists(_segment(1), max_size=3))
    return normalize_path("/" + "/".join(segments) + draw(st.sampled_from(["", "/"])))


@st.composite
def _raw_paths(draw: st.DrawFn) -> str:
    parts = st.one_of(_segment(0), st.sampled_from([".", "..", ""]))
    return "/" + "/".join(draw(st.lists(parts, max_size=5)))


@bounded(150)
@given(
    prefixes=st.lists(_prefixes(), min_size=1, max_size=8, unique=True),
    hosts=st.lists(st.sampled_from([None, "a.test", "b.test", "*.test"]), min_size=8, max_size=8),
    raw=_raw_paths(),
    host=st.sampled_from(["a.test", "b.test", "c.test", "x.other"]),
)
def test_plain_prefixes_match_exactly_the_paths_they_start_and_the_longest_wins(
    prefixes: list[str], hosts: list[str | None], raw: str, host: str
) -> None:
    """Each route has one plain prefix (some also a host): the router answers with a route
    whose prefix starts the normalized path and is the longest such, or nothing if none does.
    Exercises the router's per-host buckets and first-segment index."""
    routes = [
        Route(
            name=f"r{i}",
            service=Ref(id=SVC.id),
            paths=[prefix],
            hosts=None if hosts[i] is None else [hosts[i]],
        )
        for i, prefix in enumerate(prefixes)
    ]
    router = Router(routes, [SVC])
    path = normalize_path(raw)
    req = _Request("GET", host, None, raw, ())
    ranked = _Model(routes, [SVC]).ranked(_Request("GET", host, None, path, ()))
    got = _route_match(router, req)
    if not ranked:
        assert got is None, (path, got)
    else:
        assert got is not None and ranked.get(got) == max(ranked.values()), (path, got, ranked)
    # Matching is on the path alone: a query string changes nothing.
    assert _route_match(router, req, raw + "?x=/a&y") == got


@bounded(200)
@given(raw=_raw_paths())
def test_normalized_paths_are_canonical(raw: str) -> None:
    path = normalize_path(raw)
    assert path.startswith("/")
    assert normalize_path(path) == path
    assert "//" not in path
    assert all(seg not in (".", "..") for seg in path.split("/"))
    # escapes of unreserved characters are decoded (`%41` is `A`), others kept upper-case
    assert "%41" not in path and "%2f" not in path
