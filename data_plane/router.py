"""The proxy's router: Kong's `traditional_compatible` route matching, compiled once per snapshot.

A route matches a request when every field it configures matches: `methods` (any of them),
`hosts` (exact, `*.suffix` or `prefix.*`, each optionally with `:port`), `headers` (every name,
any of its values, values compared case-insensitively, `~*` values as regexes) and `paths` (a
plain prefix of the normalized path, or a `~` regex anchored at its start). Among matching
routes the highest priority wins (Kong's `get_priority`): number of configured fields, then
exact-hosts-only, then number of headers, then regex paths (by `regex_priority`) before plain
ones, then the longest plain path. Each path of a route is a separate candidate, as in Kong,
which splits routes by path.

Only routes for `http`/`https` that point at an existing, enabled service are compiled; the
proxy checks the route's `protocols` against the request scheme itself (Kong's 426).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from data_plane.paths import normalize_path, upstream_path
from gateway.entities import Route, Service
from gateway.headers import Headers

__all__ = ["RouteMatch", "Router", "RouterError", "normalize_path"]

_HTTP_PROTOCOLS = frozenset({"http", "https"})
# PCRE's `(?<name>` named group (what Kong users write) is `(?P<name>` in Python; lookbehinds
# `(?<=` and `(?<!` are left alone.
_PCRE_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
# The memo of candidates per (host bucket, first path segment) is bounded in entries and in key
# length: segments come from clients.
_MEMO_LIMIT = 8192
_MEMO_SEGMENT_MAX = 200
# A host bucket with more candidates than this indexes them by first path segment. Sets of
# more exact hosts than this are frozensets, smaller ones tuples (a 10k-route config has 10k
# one-host routes: a frozenset is 216 bytes, a tuple 48).
_INDEX_FROM = 8
_NO_CANDIDATES: Mapping[str, tuple[_Candidate, ...]] = MappingProxyType({})
_RANK = attrgetter("rank")


class RouterError(ValueError):
    """A route cannot be compiled (e.g. a regex Python cannot parse)."""


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The result of routing one request. Treat `uri_captures` as read-only."""

    route: Route
    service: Service | None
    upstream_path: str
    """Path to send upstream (no query string): strip_path applied, joined with service.path."""
    uri_captures: dict[str, str]
    """Regex path captures: "0" (whole match), "1", "2"... and named groups; {} for plain paths."""
    forwarded_prefix: str | None = None
    """The part of the path that strip_path removed (Kong's X-Forwarded-Prefix), else None."""


@dataclass(frozen=True, slots=True)
class _HeaderRule:
    name: str
    values: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, request_values: list[str]) -> bool:
        for value in request_values:
            if value in self.values or any(p.search(value) for p in self.patterns):
                return True
        return False


@dataclass(slots=True)
class _Candidate:
    """One (route, path) pair, precompiled. Not changed once its router is built."""

    route: Route
    service: Service
    base: str
    methods: frozenset[str] | None
    exact_hosts: frozenset[str] | tuple[str, ...] | None
    """None: any host; else `host` or `host:port` entries (a tuple when there are few)."""
    wildcards: tuple[tuple[str, bool, str | None], ...]  # (text, is_suffix, port)
    headers: tuple[_HeaderRule, ...]
    prefix: str | None
    regex: re.Pattern[str] | None
    first_segment: str | None  # complete first segment of `prefix`, if it has one
    rank: int = 0
    """Position in the router's priority order (set once all candidates are sorted)."""

    def may_match(self, segment: str) -> bool:
        """Whether a path whose first segment is `segment` can match this candidate's path."""
        if self.prefix is None:
            return True
        if self.first_segment is not None:
            return self.first_segment == segment
        return segment.startswith(self.prefix[1:])

    def host_matches(self, hostname: str, host_port: str | None, port: str | None) -> bool:
        exact = self.exact_hosts
        if exact is None:
            return True
        if hostname in exact or (host_port is not None and host_port in exact):
            return True
        for text, is_suffix, want_port in self.wildcards:
            if want_port is not None and want_port != port:
                continue
            if hostname.endswith(text) if is_suffix else hostname.startswith(text):
                return True
        return False


class _Bucket:
    """Candidates for one request host, indexed by the first segment of their plain path.

    A plain prefix with a complete first segment (`/foo/...`) can only match requests whose
    first segment equals it; a prefix without one (`/foo`, `/`) only requests whose first
    segment starts with its text. Regex and path-less candidates can match any path. Lookups
    are memoized per (bucket, request segment), in priority order. A host's bucket holds only the
    routes naming that host and defers to the shared bucket of host-agnostic routes, so that
    compiling stays linear in the number of routes. A bucket of a few candidates (most hosts
    name one route) keeps no index: a lookup filters them, once per segment.
    """

    __slots__ = ("_anywhere", "_fallback", "_max_partial", "_memo", "_partial", "_whole")

    def __init__(
        self,
        candidates: list[_Candidate],
        fallback: _Bucket | None,
        memo: dict[tuple[_Bucket, str], tuple[_Candidate, ...]],
    ) -> None:
        self._fallback = fallback
        self._memo = memo  # shared by all buckets of one router
        self._anywhere = tuple(candidates)
        self._whole: Mapping[str, tuple[_Candidate, ...]] | None = None
        self._partial: Mapping[str, tuple[_Candidate, ...]] = _NO_CANDIDATES
        self._max_partial = -1
        if len(candidates) <= _INDEX_FROM:
            return  # `_whole` None: every candidate of `_anywhere` is to filter
        whole: dict[str, list[_Candidate]] = {}
        partial: dict[str, list[_Candidate]] = {}
        anywhere: list[_Candidate] = []
        for c in candidates:
            if c.prefix is None:
                anywhere.append(c)
            elif c.first_segment is not None:
                whole.setdefault(c.first_segment, []).append(c)
            else:
                partial.setdefault(c.prefix[1:], []).append(c)
        self._anywhere = tuple(anywhere)
        self._whole = {k: tuple(v) for k, v in whole.items()}
        if partial:
            self._partial = {k: tuple(v) for k, v in partial.items()}
            self._max_partial = max(len(k) for k in partial)

    def for_segment(self, segment: str) -> tuple[_Candidate, ...]:
        """The candidates that can match a path whose first segment is `segment`."""
        key = (self, segment)
        found = self._memo.get(key)
        if found is not None:
            return found
        pool: list[_Candidate]
        if self._whole is None:
            pool = [c for c in self._anywhere if c.may_match(segment)]
        else:
            pool = [*self._anywhere, *self._whole.get(segment, ())]
            for length in range(min(len(segment), self._max_partial) + 1):
                pool += self._partial.get(segment[:length], ())
        if self._fallback is not None:
            pool += self._fallback.for_segment(segment)
        pool.sort(key=_RANK)
        found = tuple(pool)
        if len(segment) <= _MEMO_SEGMENT_MAX:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = found
        return found


class Router:
    """Routes requests to (route, service); build once per snapshot, then call `match`."""

    __slots__ = ("_buckets", "_default")

    def __init__(self, routes: Sequence[Route], services: Sequence[Service]) -> None:
        """Compile `routes`; raises RouterError if a route's regex cannot be compiled.

        Routes without a service, with a missing or disabled service, or without an http or
        https protocol are left out: they can never be proxied.
        """
        by_id = {s.id: s for s in services}
        keyed: list[tuple[tuple[object, ...], _Candidate]] = []
        shared: dict[object, Any] = {}
        for route in routes:
            service = by_id.get(route.service.id) if route.service else None
            if service is None or not service.enabled:
                continue
            if not _HTTP_PROTOCOLS.intersection(route.protocols):
                continue
            keyed.extend(_compile_route(route, service, shared))
        keyed.sort(key=lambda pair: pair[0])
        ordered = [c for _, c in keyed]
        for rank, c in enumerate(ordered):
            c.rank = rank
        # Routes with only exact hosts are reachable through their hosts' buckets alone.
        generic: list[_Candidate] = []
        by_host: dict[str, list[_Candidate]] = {}
        for c in ordered:
            if c.exact_hosts is None or c.wildcards:
                generic.append(c)
            else:
                for key in c.exact_hosts:
                    by_host.setdefault(key, []).append(c)
        memo: dict[tuple[_Bucket, str], tuple[_Candidate, ...]] = {}
        self._default = _Bucket(generic, None, memo)
        buckets: dict[str, _Bucket] = {}
        for key, own in by_host.items():
            hostname, port = _split_host(key)
            if port is not None:
                # A request for host:port also matches routes listing the bare host.
                both = own + by_host.get(hostname, [])
                own = list({id(c): c for c in both}.values())  # a route may list both
            buckets[key] = _Bucket(own, self._default, memo)
        self._buckets = buckets

    def match(
        self, method: str, host: str, path: str, headers: Headers, port: int | None = None
    ) -> RouteMatch | None:
        """The highest-priority route matching the request, or None (Kong then answers 404).

        `host` is the Host header (with or without `:port`; `port` is used when it has none);
        `path` is the request path without its query string, raw or already normalized
        (normalizing is idempotent).
        """
        query_at = path.find("?")
        if query_at >= 0:
            path = path[:query_at]
        path = normalize_path(path)
        hostname, host_port = _split_host(host.lower())
        if host_port is None and port is not None:
            host_port = str(port)
        bucket = None
        key = None
        if host_port is not None:
            key = f"{hostname}:{host_port}"
            bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets.get(hostname, self._default)
        slash = path.find("/", 1)
        segment = path[1:slash] if slash > 0 else path[1:]

        header_map: dict[str, list[str]] | None = None
        for c in bucket.for_segment(segment):
            m: re.Match[str] | None = None
            if c.prefix is not None:
                if not path.startswith(c.prefix):
                    continue
            elif c.regex is not None:
                m = c.regex.match(path)
                if m is None:
                    continue
            if c.methods is not None and method not in c.methods:
                continue
            if not c.host_matches(hostname, key, host_port):
                continue
            if c.headers:
                if header_map is None:
                    header_map = _header_map(headers)
                if not all(r.matches(header_map.get(r.name, [])) for r in c.headers):
                    continue
            return _result(c, path, m)
        return None


def _result(c: _Candidate, path: str, m: re.Match[str] | None) -> RouteMatch:
    route = c.route
    matched: str | None = c.prefix
    captures: dict[str, str] = {}
    if m is not None:
        matched = m.group(0)
        if m.re.groups:
            captures["0"] = matched
            for i, value in enumerate(m.groups(), 1):
                if value is not None:
                    captures[str(i)] = value
            for name, value in m.groupdict().items():
                if value is not None:
                    captures[name] = value
    stripped = matched if route.strip_path else None
    postfix = path[len(stripped) :] if stripped is not None else None
    upstream = upstream_path(c.base, path, postfix, route.strip_path, route.path_handling)
    return RouteMatch(route, c.service, upstream, captures, stripped)


def _header_name(name: str) -> str:
    # Kong compares header names case-insensitively with `-` and `_` equivalent.
    return name.lower().replace("_", "-")


def _header_map(headers: Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        out.setdefault(_header_name(name), []).append(value.lower())
    return out


def _split_host(host: str) -> tuple[str, str | None]:
    """`example.com:8080` -> (`example.com`, `8080`); IPv6 literals keep their brackets."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0 and host[end + 1 : end + 2] == ":" and host[end + 2 :].isdigit():
            return host[: end + 1], str(int(host[end + 2 :]))
        return host, None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, str(int(port))
    return host, None


def _compile_route(
    route: Route, service: Service, shared: dict[object, Any]
) -> list[tuple[tuple[object, ...], _Candidate]]:
    """One (sort key, candidate) per path of `route` (one in all if it has no paths). Equal
    method sets and first segments are taken from `shared`, one object for all routes."""
    methods = None
    if route.methods:
        methods = frozenset(route.methods)
        methods = shared.setdefault(methods, methods)
    exact: dict[str, None] = {}  # ordered, without duplicates
    wildcards: list[tuple[str, bool, str | None]] = []
    for raw in route.hosts or ():
        lowered = raw.lower()
        name, port = _split_host(raw if lowered == raw else lowered)
        if name.startswith("*"):
            wildcards.append((name[1:], True, port))
        elif name.endswith("*"):
            wildcards.append((name[:-1], False, port))
        else:
            exact[name if port is None else f"{name}:{port}"] = None
    exact_hosts: frozenset[str] | tuple[str, ...] | None = None
    if route.hosts:
        exact_hosts = tuple(exact) if len(exact) <= _INDEX_FROM else frozenset(exact)
    header_rules = tuple(
        _header_rule(route, name, values) for name, values in (route.headers or {}).items()
    )
    weight = sum(
        1 for field in (route.methods, route.hosts, route.headers, route.paths, route.snis) if field
    )
    # Kong tests `type(hosts) == "table"`: an empty (not null) hosts list counts as plain.
    plain_hosts_only = route.hosts is not None and not wildcards
    common = (-weight, -int(plain_hosts_only), -len(header_rules))

    def candidate(
        prefix: str | None, regex: re.Pattern[str] | None, first_segment: str | None
    ) -> _Candidate:
        return _Candidate(
            route=route,
            service=service,
            base=service.path or "/",
            methods=methods,
            exact_hosts=exact_hosts,
            wildcards=tuple(wildcards),
            headers=header_rules,
            prefix=prefix,
            regex=regex,
            first_segment=first_segment,
        )

    if not route.paths:
        return [((*common, 0, 0, 0, route.id, 0), candidate(None, None, None))]
    out: list[tuple[tuple[object, ...], _Candidate]] = []
    for index, raw_path in enumerate(route.paths):
        if raw_path.startswith("~"):
            regex = _compile_regex(route, _PCRE_NAMED_GROUP.sub("(?P<", raw_path[1:]))
            key = (*common, -1, -route.regex_priority, 0, route.id, index)
            out.append((key, candidate(None, regex, None)))
        else:
            prefix = normalize_path(raw_path)
            slash = prefix.find("/", 1)
            first = shared.setdefault(prefix[1:slash], prefix[1:slash]) if slash > 0 else None
            key = (*common, 0, 0, -len(prefix), route.id, index)
            out.append((key, candidate(prefix, None, first)))
    return out


def _header_rule(route: Route, name: str, values: list[str]) -> _HeaderRule:
    exact = frozenset(v.lower() for v in values if not v.startswith("~*"))
    patterns = tuple(
        _compile_regex(route, v[2:], re.IGNORECASE) for v in values if v.startswith("~*")
    )
    return _HeaderRule(_header_name(name), exact, patterns)


def _compile_regex(route: Route, pattern: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        label = route.name or route.id
        raise RouterError(f"route {label}: invalid regex {pattern!r}: {exc}") from exc
