"""Build the data-plane `Snapshot` from the store.

Contents: enabled services; routes without a service or whose service is enabled (Kong's router
skips routes of disabled services); enabled plugins whose service/route are in the snapshot;
and only the consumers config references: consumers that scope a plugin, and consumers named
(by id or username) in a plugin's `config.anonymous`. No credentials.
"""

from __future__ import annotations

from control_plane.store.protocol import Reader
from gateway.entities import Consumer, Plugin, Route, Service
from gateway.snapshot import Snapshot


def build_snapshot(reader: Reader) -> Snapshot:
    """The snapshot at the reader's revision (its `version`)."""
    services = tuple(s for s in reader.all(Service) if s.enabled)
    service_ids = {s.id for s in services}
    routes = tuple(r for r in reader.all(Route) if r.service is None or r.service.id in service_ids)
    route_ids = {r.id for r in routes}
    plugins = tuple(
        p
        for p in reader.all(Plugin)
        if p.enabled
        and (p.service is None or p.service.id in service_ids)
        and (p.route is None or p.route.id in route_ids)
    )
    return Snapshot.create(
        reader.revision(), services, routes, plugins, _referenced_consumers(reader, plugins)
    )


def _referenced_consumers(reader: Reader, plugins: tuple[Plugin, ...]) -> tuple[Consumer, ...]:
    found: dict[str, Consumer] = {}
    for plugin in plugins:
        consumer: Consumer | None = None
        if plugin.consumer is not None:
            consumer = reader.get(Consumer, plugin.consumer.id)
            if consumer is not None:
                found[consumer.id] = consumer
        anonymous = plugin.config.get("anonymous")
        if isinstance(anonymous, str) and anonymous:
            consumer = reader.get(Consumer, anonymous) or reader.find(
                Consumer, "username", anonymous
            )
            if consumer is not None:
                found[consumer.id] = consumer
    return tuple(sorted(found.values(), key=lambda c: c.id))
