"""Plugin pipelines compiled once per snapshot.

For each route, every plugin name that applies gets a `Slot`: the instance chosen by Kong's
precedence without a consumer, plus the consumer-specific instances, which are picked after
authentication (Kong resolves each plugin's config with the consumer known at that point).
Slots are ordered by priority, highest first, ties by name descending (Kong's order).

Precedence (most specific wins): route+service+consumer, route+consumer, service+consumer,
route+service, consumer, route, service, global.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gateway.context import Exit, RequestContext
from gateway.credentials import CredentialLookup
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Route
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginRuntimeError
from gateway.snapshot import Snapshot
from gateway.vault import NO_VAULT, EnvVault, UnresolvedReference, has_references, resolve_fields

log = logging.getLogger("lockgate.dp.plugins")


@dataclass(frozen=True, slots=True)
class Instance:
    """One configured plugin, compiled."""

    entity: PluginEntity
    priority: int
    handler: Handler
    phases: frozenset[str]
    """The phases the handler implements, and "retry" when it overrides the retry hook."""

    @property
    def name(self) -> str:
        return self.entity.name


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    priority: int
    default: Instance | None
    by_consumer: Mapping[str, Instance]

    def pick(self, consumer_id: str | None) -> Instance | None:
        if consumer_id is not None and self.by_consumer:
            return self.by_consumer.get(consumer_id, self.default)
        return self.default


@dataclass(frozen=True, slots=True)
class PhaseLists:
    """The instances of a run that implement each phase, in pipeline order, worked out once
    (so the proxy need not test `phases` of every instance at every phase of every request)."""

    access: tuple[Instance, ...]
    header_filter: tuple[Instance, ...]
    body_filter: tuple[Instance, ...]
    log: tuple[Instance, ...]
    retry: bool
    """Some instance overrides the retry hook."""
    retry_hooks: tuple[Instance, ...] = ()
    """The instances overriding the retry hook, in pipeline order."""

    @classmethod
    def of(cls, instances: Sequence[Instance]) -> PhaseLists:
        def having(phase: str) -> tuple[Instance, ...]:
            return tuple(inst for inst in instances if phase in inst.phases)

        return cls(
            having("access"),
            having("header_filter"),
            having("body_filter"),
            having("log"),
            any("retry" in inst.phases for inst in instances),
            having("retry"),
        )


@dataclass(frozen=True, slots=True)
class Pipeline:
    slots: tuple[Slot, ...]
    fixed: tuple[Instance, ...] | None = field(init=False, default=None)
    """When no slot has consumer-specific instances (the usual case): the instances every
    request runs, in order (what `Slot.pick` gives whatever the consumer); else None."""
    fixed_phases: PhaseLists | None = field(init=False, default=None)
    """`PhaseLists.of(fixed)`, when `fixed` is set: valid for a request that collected every
    instance of `fixed` (an exit in access still collects them all, as Kong does)."""

    def __post_init__(self) -> None:
        if any(slot.by_consumer for slot in self.slots):
            return
        fixed = tuple(slot.default for slot in self.slots if slot.default is not None)
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "fixed_phases", PhaseLists.of(fixed))


@dataclass(frozen=True, slots=True)
class CompiledPlugins:
    global_rewrite: tuple[Instance, ...]
    """Global instances with a rewrite phase: they run before routing."""
    by_route: Mapping[str, Pipeline]
    no_route: Pipeline
    """Global plugins only: used for requests that matched no route."""
    unresolved: tuple[str, ...] = ()
    """Why each instance whose vault reference has no value here fails its requests (no
    values in them): shown on the status port and counted in /metrics."""


class PluginBuildError(Exception):
    """A plugin in the snapshot could not be compiled; the snapshot must be rejected."""


_PHASES = ("rewrite", "access", "header_filter", "body_filter", "log", "retry")
"""What `Instance.phases` may hold: the phases, and the `retry` hook (see `Handler.retry`)."""


class UnresolvedSecret(Handler):
    """Stands in for a plugin instance whose vault reference has no value on this node: its
    requests fail closed (500, the reason in the log) instead of reaching a provider without
    the key; the rest of the snapshot is served."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def access(self, ctx: RequestContext) -> Exit | None:
        raise PluginRuntimeError(self.reason)


def _fail_closed(entity: PluginEntity, unresolved: list[str], why: str) -> Handler:
    reason = f"plugin '{entity.name}' ({entity.id}): {why}"
    log.error("%s; its requests get 500 until it resolves", reason)
    unresolved.append(reason)
    return UnresolvedSecret(reason)


def _without_values(exc: Exception) -> str:
    """What was wrong with a config holding resolved secrets, without any input value."""
    prefix = "invalid once its vault references are resolved"
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return f"{prefix}: {where}"
    return f"{prefix} ({type(exc).__name__})"


def compile_plugins(
    snapshot: Snapshot,
    registry: Mapping[str, Plugin[Any]],
    credentials: CredentialLookup,
    vault: EnvVault = NO_VAULT,
) -> CompiledPlugins:
    """Validate and build every enabled plugin instance of `snapshot` into per-route pipelines;
    vault references in referenceable fields are resolved with `vault`."""
    instances: list[Instance] = []
    unresolved: list[str] = []
    for entity in snapshot.plugins:
        if not entity.enabled:
            continue
        plugin = registry.get(entity.name)
        if plugin is None:
            raise PluginBuildError(f"plugin '{entity.name}' ({entity.id}) is not installed")
        raw: Mapping[str, Any] = entity.config
        resolved = plugin.referenceable and has_references(raw, plugin.referenceable)
        try:
            if resolved:
                raw = resolve_fields(raw, plugin.referenceable, vault)
            config = plugin.validate(dict(raw))
            handler: Handler = plugin.build(config, BuildContext(snapshot, credentials, entity))
        except UnresolvedReference as exc:
            handler = _fail_closed(entity, unresolved, str(exc))
        except Exception as exc:
            if resolved:  # a value from the environment broke it: never quote the error's input
                handler = _fail_closed(entity, unresolved, _without_values(exc))
            else:
                raise PluginBuildError(f"plugin '{entity.name}' ({entity.id}): {exc}") from exc
        phases = frozenset(p for p in _PHASES if type(handler).overrides(p))
        instances.append(Instance(entity, plugin.priority, handler, phases))

    global_rewrite = tuple(
        sorted(
            (i for i in instances if _is_global(i.entity) and "rewrite" in i.phases),
            key=_order,
        )
    )
    by_route = {route.id: _pipeline_for(route, instances) for route in snapshot.routes}
    return CompiledPlugins(
        global_rewrite, by_route, _pipeline_for(None, instances), tuple(unresolved)
    )


def _scope(entity: PluginEntity) -> tuple[bool, bool, bool]:
    return (entity.route is not None, entity.service is not None, entity.consumer is not None)


def _is_global(entity: PluginEntity) -> bool:
    return _scope(entity) == (False, False, False)


def _order(instance: Instance) -> tuple[int, str]:
    # Highest priority first; ties broken by name descending (Kong: a.name > b.name).
    return (-instance.priority, _invert(instance.name))


def _invert(name: str) -> str:
    # Sorting inverted strings ascending gives the originals descending; the terminator makes a
    # prefix sort after its extensions ("ai-proxy-advanced" before "ai-proxy").
    return "".join(chr(0x10FFFF - ord(c)) for c in name) + chr(0x10FFFF)


# Rank of each (route, service, consumer) scope shape: lower is more specific.
_RANK = {
    (True, True, True): 0,
    (True, False, True): 1,
    (False, True, True): 2,
    (True, True, False): 3,
    (False, False, True): 4,
    (True, False, False): 5,
    (False, True, False): 6,
    (False, False, False): 7,
}


def _applies(entity: PluginEntity, route: Route | None) -> bool:
    if entity.route is not None and (route is None or entity.route.id != route.id):
        return False
    if entity.service is not None:
        service_id = route.service.id if route is not None and route.service else None
        if entity.service.id != service_id:
            return False
    return True


def _pipeline_for(route: Route | None, instances: list[Instance]) -> Pipeline:
    default: dict[str, Instance] = {}
    consumer: dict[str, dict[str, Instance]] = defaultdict(dict)
    for inst in sorted(instances, key=lambda i: _RANK[_scope(i.entity)], reverse=True):
        # Least specific first, so more specific instances overwrite.
        if not _applies(inst.entity, route):
            continue
        if inst.entity.consumer is not None:
            consumer[inst.name][inst.entity.consumer.id] = inst
        else:
            default[inst.name] = inst
    slots = []
    for name in set(default) | set(consumer):
        base = default.get(name)
        picks = {
            cid: inst
            for cid, inst in consumer.get(name, {}).items()
            # A consumer instance wins only where its scope is more specific than the default's.
            if base is None or _RANK[_scope(inst.entity)] < _RANK[_scope(base.entity)]
        }
        any_inst = base or next(iter(consumer[name].values()))
        slots.append(Slot(name, any_inst.priority, base, picks))
    slots.sort(key=lambda s: (-s.priority, _invert(s.name)))
    return Pipeline(tuple(slots))
