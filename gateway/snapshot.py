"""The config snapshot: one immutable value pushed from the control plane to every data plane.

It holds services, routes, plugins and only the consumers that config references. It never
holds credentials. `hash` is the SHA-256 of the canonical encoding of the content (version
excluded), so two snapshots with the same config have the same hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gateway.entities import Consumer, Plugin, Route, Service

EMPTY_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    services: tuple[Service, ...] = ()
    routes: tuple[Route, ...] = ()
    plugins: tuple[Plugin, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    hash: str = field(default="")

    @staticmethod
    def create(
        version: int,
        services: tuple[Service, ...] = (),
        routes: tuple[Route, ...] = (),
        plugins: tuple[Plugin, ...] = (),
        consumers: tuple[Consumer, ...] = (),
    ) -> Snapshot:
        """Build a snapshot with its content hash computed."""
        content = _content(services, routes, plugins, consumers)
        digest = hashlib.sha256(_canonical(content)).hexdigest()
        return Snapshot(version, services, routes, plugins, consumers, digest)

    def encode(self) -> bytes:
        """Canonical JSON bytes (sorted keys, no spaces), version and hash included."""
        doc = _content(self.services, self.routes, self.plugins, self.consumers)
        doc["version"] = self.version
        doc["hash"] = self.hash
        return _canonical(doc)

    @staticmethod
    def decode(data: bytes) -> Snapshot:
        """Parse `encode()` output; raises ValueError if it is malformed or its hash is wrong."""
        try:
            doc = json.loads(data)
            content = {kind: doc[kind] for kind in ("services", "routes", "plugins", "consumers")}
            # The hash is checked on the parsed content as sent: `encode()` wrote the models'
            # dumps, so re-dumping the validated models would give the same bytes, slower.
            digest = hashlib.sha256(_canonical(content)).hexdigest()
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed snapshot: {exc}") from exc
        if digest != doc.get("hash"):
            raise ValueError("snapshot hash mismatch")
        try:
            return Snapshot(
                int(doc["version"]),
                tuple(Service.model_validate(s) for s in content["services"]),
                tuple(Route.model_validate(r) for r in content["routes"]),
                tuple(Plugin.model_validate(p) for p in content["plugins"]),
                tuple(Consumer.model_validate(c) for c in content["consumers"]),
                digest,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed snapshot: {exc}") from exc


def _content(
    services: tuple[Service, ...],
    routes: tuple[Route, ...],
    plugins: tuple[Plugin, ...],
    consumers: tuple[Consumer, ...],
) -> dict[str, Any]:
    return {
        "services": [s.model_dump(mode="json") for s in services],
        "routes": [r.model_dump(mode="json") for r in routes],
        "plugins": [p.model_dump(mode="json") for p in plugins],
        "consumers": [c.model_dump(mode="json") for c in consumers],
    }


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
