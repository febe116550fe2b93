"""A snapshot compiled for serving (router + plugin pipelines), swapped atomically.

Compilation happens once per snapshot, off the request path; a snapshot that fails to compile
is rejected as a whole and the node keeps serving the previous runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from data_plane.pipeline import CompiledPlugins, compile_plugins
from data_plane.router import Router
from gateway.credentials import CredentialLookup
from gateway.entities import Service
from gateway.plugins.base import Plugin
from gateway.snapshot import Snapshot
from gateway.vault import NO_VAULT, EnvVault


@dataclass(frozen=True, slots=True)
class Runtime:
    snapshot: Snapshot
    router: Router
    plugins: CompiledPlugins
    services: Mapping[str, Service]


def compile_runtime(
    snapshot: Snapshot,
    registry: Mapping[str, Plugin[Any]],
    credentials: CredentialLookup,
    vault: EnvVault = NO_VAULT,
) -> Runtime:
    """Compile `snapshot`; raises on anything invalid (the caller NACKs)."""
    return Runtime(
        snapshot=snapshot,
        router=Router(snapshot.routes, snapshot.services),
        plugins=compile_plugins(snapshot, registry, credentials, vault),
        services={s.id: s for s in snapshot.services},
    )


class RuntimeHolder:
    """The one current runtime. Readers take `current` once per request; swaps are atomic."""

    def __init__(self) -> None:
        self.current: Runtime | None = None

    def swap(self, runtime: Runtime) -> None:
        self.current = runtime
