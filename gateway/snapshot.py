"""The config snapshot: one immutable value pushed from the control plane to every data plane.

It holds services, routes, plugins and only the consumers that config references. It never
holds credentials. `hash` is the SHA-256 of the canonical encoding of the content (version
excluded), so two snapshots with the same config have the same hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.entities import Consumer, Entity, Plugin, Route, Service
from gateway.entity_decoder import EntityDecoder

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
        digest = _digest(services, routes, plugins, consumers)
        return Snapshot(version, services, routes, plugins, consumers, digest)

    def encode(self) -> bytes:
        """Canonical JSON bytes (sorted keys, no spaces), version and hash included."""
        return b"".join(self.encode_chunks())

    def encode_chunks(self) -> Iterator[bytes]:
        """`encode()` in pieces (about one per entity), to write without holding it whole."""
        yield b'{"consumers":['
        yield from _entities(self.consumers)
        yield b'],"hash":' + _canonical(self.hash) + b',"plugins":['
        yield from _entities(self.plugins)
        yield b'],"routes":['
        yield from _entities(self.routes)
        yield b'],"services":['
        yield from _entities(self.services)
        yield b'],"version":' + _canonical(self.version) + b"}"

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
        # Compact entities (a data plane holds them all), built as the document is consumed.
        entities = EntityDecoder()
        try:
            version = int(doc["version"])
            return Snapshot(
                version,
                entities.validate_all(Service, content["services"]),
                entities.validate_all(Route, content["routes"]),
                entities.validate_all(Plugin, content["plugins"]),
                entities.validate_all(Consumer, content["consumers"]),
                digest,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed snapshot: {exc}") from exc


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(doc: Any) -> bytes:
    return _CANONICAL.encode(doc).encode()


def _entities(entities: Iterable[Entity]) -> Iterator[bytes]:
    """The canonical JSON list items of `entities`, each with its separating comma."""
    separator = b""
    for entity in entities:
        yield separator + _canonical(entity.model_dump(mode="json"))
        separator = b","


def _digest(
    services: tuple[Service, ...],
    routes: tuple[Route, ...],
    plugins: tuple[Plugin, ...],
    consumers: tuple[Consumer, ...],
) -> str:
    """SHA-256 hex of the canonical JSON of the four lists (`encode()` without version and
    hash), fed one entity at a time rather than built whole (10k routes: ~9 MB)."""
    digest = hashlib.sha256()
    digest.update(b'{"consumers":[')
    for kind, entities in (
        ("consumers", consumers),
        ("plugins", plugins),
        ("routes", routes),
        ("services", services),
    ):
        if kind != "consumers":
            digest.update(b'],"' + kind.encode() + b'":[')
        for chunk in _entities(entities):
            digest.update(chunk)
    digest.update(b"]}")
    return digest.hexdigest()
