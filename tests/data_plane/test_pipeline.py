"""Plugin precedence and ordering, as Kong resolves them."""

from __future__ import annotations

from typing import Any

import pytest

from data_plane.pipeline import PluginBuildError, compile_plugins
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig
from gateway.snapshot import Snapshot


class TagConfig(PluginConfig):
    tag: str = ""


class TagHandler(Handler):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def access(self, ctx: Any) -> None:
        return None


def make_plugin(plugin_name: str, plugin_priority: int) -> Plugin[TagConfig]:
    class _P(Plugin[TagConfig]):
        name = plugin_name
        priority = plugin_priority
        config_model = TagConfig

        def build(self, config: TagConfig, deps: BuildContext) -> Handler:
            return TagHandler(config.tag)

    return _P()


REGISTRY = {
    p.name: p
    for p in (
        make_plugin("pre-function", 1000000),
        make_plugin("key-auth", 1250),
        make_plugin("ai-proxy", 770),
        make_plugin("ai-proxy-advanced", 770),
        make_plugin("rate-limiting", 910),
    )
}

SERVICE = Service(name="s", host="upstream")
ROUTE = Route(name="r", paths=["/r"], service=Ref(id=SERVICE.id))
OTHER = Route(name="o", paths=["/o"], service=Ref(id=SERVICE.id))


def plugin(name: str, tag: str, **scope: str) -> PluginEntity:
    return PluginEntity(name=name, config={"tag": tag}, **{k: Ref(id=v) for k, v in scope.items()})


def compiled(*plugins: PluginEntity) -> Any:
    snap = Snapshot.create(1, (SERVICE,), (ROUTE, OTHER), plugins)
    return compile_plugins(snap, REGISTRY, InMemoryCredentials())


def tags(pipeline: Any, consumer: str | None = None) -> list[tuple[str, str]]:
    out = []
    for slot in pipeline.slots:
        inst = slot.pick(consumer)
        if inst is not None:
            out.append((slot.name, inst.handler.tag))
    return out


def test_order_by_priority_then_name_descending() -> None:
    c = compiled(
        plugin("ai-proxy", "g"),
        plugin("key-auth", "g"),
        plugin("ai-proxy-advanced", "g"),
        plugin("pre-function", "g"),
    )
    assert [n for n, _ in tags(c.by_route[ROUTE.id])] == [
        "pre-function",
        "key-auth",
        "ai-proxy-advanced",
        "ai-proxy",
    ]


def test_most_specific_scope_wins() -> None:
    c = compiled(
        plugin("rate-limiting", "global"),
        plugin("rate-limiting", "service", service=SERVICE.id),
        plugin("rate-limiting", "route", route=ROUTE.id),
    )
    assert tags(c.by_route[ROUTE.id]) == [("rate-limiting", "route")]
    assert tags(c.by_route[OTHER.id]) == [("rate-limiting", "service")]
    assert tags(c.no_route) == [("rate-limiting", "global")]


def test_consumer_scope_is_picked_after_authentication() -> None:
    c = compiled(
        plugin("rate-limiting", "route", route=ROUTE.id),
        plugin("rate-limiting", "alice", consumer="alice-id"),
        plugin("rate-limiting", "bob-route", consumer="bob-id", route=ROUTE.id),
    )
    pipeline = c.by_route[ROUTE.id]
    assert tags(pipeline) == [("rate-limiting", "route")]
    assert tags(pipeline, "bob-id") == [("rate-limiting", "bob-route")]
    # consumer-only (rank 5) beats route-only (rank 6)
    assert tags(pipeline, "alice-id") == [("rate-limiting", "alice")]
    # bob's instance is scoped to ROUTE, so nothing applies to him on OTHER
    assert tags(c.by_route[OTHER.id], "bob-id") == []


def test_route_and_service_beats_consumer_only() -> None:
    c = compiled(
        plugin("rate-limiting", "route+service", route=ROUTE.id, service=SERVICE.id),
        plugin("rate-limiting", "alice", consumer="alice-id"),
    )
    assert tags(c.by_route[ROUTE.id], "alice-id") == [("rate-limiting", "route+service")]


def test_disabled_plugins_are_ignored_and_unknown_ones_reject_the_snapshot() -> None:
    disabled = PluginEntity(name="key-auth", enabled=False, config={"tag": "x"})
    assert tags(compiled(disabled).by_route[ROUTE.id]) == []
    with pytest.raises(PluginBuildError, match="not installed"):
        compiled(PluginEntity(name="nope", config={}))
    with pytest.raises(PluginBuildError, match="key-auth"):
        compiled(PluginEntity(name="key-auth", config={"unknown": 1}))


class LogHandler(Handler):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def log(self, ctx: Any) -> None:
        return None


def test_fixed_run_lists_each_phase_once_per_snapshot() -> None:
    registry = {**REGISTRY, "logger": _log_plugin()}
    snap = Snapshot.create(
        1,
        (SERVICE,),
        (ROUTE, OTHER),
        (
            plugin("key-auth", "route", route=ROUTE.id),
            plugin("pre-function", "global"),
            PluginEntity(name="logger", config={"tag": "g"}, route=Ref(id=ROUTE.id)),
        ),
    )
    pipeline = compile_plugins(snap, registry, InMemoryCredentials()).by_route[ROUTE.id]
    assert pipeline.fixed is not None and pipeline.fixed_phases is not None
    # What every request runs: the slots' picks, in order, whatever the consumer.
    assert [i.name for i in pipeline.fixed] == [n for n, _ in tags(pipeline, "anyone")]
    assert [i.name for i in pipeline.fixed_phases.access] == ["pre-function", "key-auth"]
    assert [i.name for i in pipeline.fixed_phases.log] == ["logger"]
    assert pipeline.fixed_phases.header_filter == pipeline.fixed_phases.body_filter == ()
    assert pipeline.fixed_phases.retry is False


def test_no_fixed_run_when_a_consumer_changes_the_picks() -> None:
    c = compiled(
        plugin("key-auth", "route", route=ROUTE.id),
        plugin("rate-limiting", "alice", consumer="alice-id"),
    )
    assert c.by_route[ROUTE.id].fixed is None
    assert c.by_route[ROUTE.id].fixed_phases is None


def _log_plugin() -> Plugin[TagConfig]:
    class _Logger(Plugin[TagConfig]):
        name = "logger"
        priority = 5
        config_model = TagConfig

        def build(self, config: TagConfig, deps: BuildContext) -> Handler:
            return LogHandler(config.tag)

    return _Logger()
