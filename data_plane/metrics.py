"""Prometheus metrics of a data plane, served as text on the status port (`GET /metrics`).

Names follow Kong's Prometheus plugin where Kong has one (`kong_http_requests_total`,
`kong_request_latency_ms`, `ai_llm_*`), so Kong's dashboards work. Nothing happens per request
here: the counts are the analytics window's, folded together when scraped. See
docs/analytics.md for the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from data_plane.analytics_window import (
    LATENCY_BOUNDS_MS,
    SOURCE,
    STATUS,
    Counts,
    GroupKey,
    MinuteWindow,
)
from gateway.prometheus_text import Exposition


class _Totals:
    """Counters since start, folded from minute groups."""

    def __init__(self) -> None:
        # (service, route, code, source) -> requests
        self.requests: dict[tuple[str, str, str, str], int] = {}
        # (service, route) -> [latency sum, *bucket counts]
        self.latency: dict[tuple[str, str], list[float]] = {}
        # (provider, model) -> [requests, prompt tokens, completion tokens, cost nanos]
        self.llm: dict[tuple[str, str], list[int]] = {}

    def fold(self, groups: dict[GroupKey, Counts]) -> None:
        for key, counts in groups.items():
            service, route = key[3], key[1]
            code = (service, route, str(key[STATUS]), key[SOURCE])
            self.requests[code] = self.requests.get(code, 0) + counts.requests
            histogram = self.latency.get((service, route))
            if histogram is None:
                histogram = self.latency[(service, route)] = [0.0] * (len(counts.buckets) + 1)
            histogram[0] += counts.latency_sum_ms
            for i, n in enumerate(counts.buckets, 1):
                histogram[i] += n
            provider, model = key[7], key[8]
            if provider:
                llm = self.llm.get((provider, model))
                if llm is None:
                    llm = self.llm[(provider, model)] = [0, 0, 0, 0]
                llm[0] += counts.requests
                llm[1] += counts.prompt_tokens
                llm[2] += counts.completion_tokens
                llm[3] += counts.cost_nanos

    def copy(self) -> _Totals:
        out = _Totals()
        out.requests = dict(self.requests)
        out.latency = {k: list(v) for k, v in self.latency.items()}
        out.llm = {k: list(v) for k, v in self.llm.items()}
        return out


class DataPlaneMetrics:
    """The data plane's Prometheus metrics. Request counts come from the analytics window
    (data_plane.analytics_window), so each request is counted once, on the request path, for
    both: totals since start are the minutes the window let go of plus the ones it holds."""

    def __init__(
        self,
        window: MinuteWindow,
        *,
        config_version: Callable[[], int] = lambda: 0,
        credential_cache_size: Callable[[], int] = lambda: 0,
        unresolved_references: Callable[[], int] = lambda: 0,
        extra: Iterable[Callable[[Exposition], None]] = (),
    ) -> None:
        """`config_version`, `credential_cache_size` and `unresolved_references` (plugin
        instances failing their requests for a vault reference without a value here) are read
        at scrape time; each `extra` writer adds its own families (e.g. the analytics sender's
        buffer). Takes over `window.on_retire`."""
        self._window = window
        self._retired = _Totals()
        window.on_retire = self._retired.fold
        self._config_version = config_version
        self._cache_size = credential_cache_size
        self._unresolved = unresolved_references
        self._extra = list(extra)

    def add_writer(self, writer: Callable[[Exposition], None]) -> None:
        self._extra.append(writer)

    def render(self) -> str:
        """The Prometheus text of every metric (call it on the proxy's event loop)."""
        totals = self._retired.copy()
        for groups in self._window.live():
            totals.fold(groups)
        out = Exposition()
        out.family("kong_http_requests_total", "counter", "HTTP status codes per service/route")
        for (service, route, code, source), n in sorted(totals.requests.items()):
            labels = (("service", service), ("route", route), ("code", code), ("source", source))
            out.sample("kong_http_requests_total", labels, n)
        out.family(
            "kong_request_latency_ms",
            "histogram",
            "Total latency of requests (until the response was sent) in ms per service/route",
        )
        for (service, route), hist in sorted(totals.latency.items()):
            out.histogram(
                "kong_request_latency_ms",
                (("service", service), ("route", route)),
                LATENCY_BOUNDS_MS,
                [int(n) for n in hist[1:]],
                hist[0],
            )
        _render_llm(out, totals)
        out.family("lockgate_config_version", "gauge", "Version of the config this node runs")
        out.sample("lockgate_config_version", (), self._config_version())
        out.family(
            "lockgate_credential_cache_entries", "gauge", "Key-auth credentials in the L1 cache"
        )
        out.sample("lockgate_credential_cache_entries", (), self._cache_size())
        out.family(
            "lockgate_unresolved_vault_references",
            "gauge",
            "Plugin instances failing their requests: a vault reference without a value here",
        )
        out.sample("lockgate_unresolved_vault_references", (), self._unresolved())
        for writer in self._extra:
            writer(out)
        return out.text()


def _render_llm(out: Exposition, totals: _Totals) -> None:
    rows = sorted(totals.llm.items())
    out.family("ai_llm_requests_total", "counter", "AI requests per provider/model")
    for (provider, model), llm in rows:
        out.sample(
            "ai_llm_requests_total", (("ai_provider", provider), ("ai_model", model)), llm[0]
        )
    out.family("ai_llm_tokens_total", "counter", "AI tokens per provider/model and type")
    for (provider, model), llm in rows:
        for token_type, value in (
            ("prompt_tokens", llm[1]),
            ("completion_tokens", llm[2]),
            ("total_tokens", llm[1] + llm[2]),
        ):
            typed = (("ai_provider", provider), ("ai_model", model), ("token_type", token_type))
            out.sample("ai_llm_tokens_total", typed, value)
    out.family("ai_llm_cost_total", "counter", "AI cost per provider/model")
    for (provider, model), llm in rows:
        out.sample(
            "ai_llm_cost_total", (("ai_provider", provider), ("ai_model", model)), llm[3] / 1e9
        )
