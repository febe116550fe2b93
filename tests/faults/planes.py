"""The fault suite's hybrid topology: control planes (one, or two on one database) and two data
planes, each a separate `lockgate control-plane` / `lockgate data-plane` process on free
loopback ports, the walkthrough synced; optionally a Redis credential cache shared by all."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.sync_procs import Cluster, ControlPlane, DataPlane, wait_for
from tests.faults.walkthrough import CHAT_PATH, chat, deck_sync

DATA_PLANES = 2


def elapsed(check: Callable[[], bool], timeout_s: float, what: str, *procs: Any) -> float:
    """`wait_for`, returning how long it took (s)."""
    started = time.monotonic()
    wait_for(check, timeout_s, what, *procs)
    return time.monotonic() - started


@dataclass
class Planes:
    """Control planes (one, or several on one database) and two data planes, separate
    processes, the walkthrough synced."""

    cluster: Cluster
    cps: list[ControlPlane]
    nodes: list[DataPlane]

    @property
    def cp(self) -> ControlPlane:
        """The first control plane (the one nodes connect to first)."""
        return self.cps[0]

    @staticmethod
    def start(
        cluster: Cluster,
        upstream: str,
        *,
        heartbeat_s: float = 1.0,
        control_planes: int = 1,
        redis_url: str | None = None,
    ) -> Planes:
        """`control_planes` > 1 share the cluster's database; every node knows them all and
        connects to the first. `redis_url`: every process's LOCKGATE_REDIS_URL."""
        env = {} if redis_url is None else {"LOCKGATE_REDIS_URL": redis_url}
        cps = [cluster.control_plane(f"cp{i}", env=env) for i in range(control_planes)]
        cp = cps[0]
        deck_sync({**cp.env, "LOCKGATE_ADMIN_URL": cp.admin_url}, cluster.root, upstream)
        nodes = []
        for i in range(DATA_PLANES):
            node = cluster.data_plane(f"dp{i}", [c.cluster_address for c in cps], start=False)
            node.env.update(env, LOCKGATE_DP_HEARTBEAT_S=str(heartbeat_s))
            node.start()
            nodes.append(node)
        planes = Planes(cluster, cps, nodes)
        planes.wait_in_sync()
        return planes

    @property
    def urls(self) -> list[str]:
        return [node.proxy_url for node in self.nodes]

    def in_sync(self, cp: ControlPlane | None = None, config_hash: str | None = None) -> bool:
        """Every node runs the expected config (`config_hash` if given), by its own /status and
        by the control plane's /clustering/data-planes."""
        cp = cp or self.cp
        try:
            expected = cp.expected_hash()
            rows = cp.data_planes()
        except httpx.HTTPError:
            return False
        if not expected or (config_hash is not None and expected != config_hash):
            return False
        return all(
            node.status().get("config_hash") == expected
            and rows.get(node.node_id, {}).get("sync_status") == "in_sync"
            and rows[node.node_id]["config_hash"] == expected
            for node in self.nodes
        )

    def wait_in_sync(self, timeout_s: float = 30, cp: ControlPlane | None = None) -> float:
        cp = cp or self.cp
        return elapsed(lambda: self.in_sync(cp), timeout_s, "every node in sync", cp, *self.nodes)

    def add_route(self, name: str, cp: ControlPlane | None = None) -> tuple[str, str]:
        """A new route `/<name>` on the how-to's service (the walkthrough's plugins are global);
        returns the chat path under it and the config hash that has it (the snapshot is rebuilt
        shortly after the write)."""
        cp = cp or self.cp
        before = cp.expected_hash()
        created(cp, "/services/example-service/routes", {"name": name, "paths": [f"/{name}"]})
        wait_for(lambda: cp.expected_hash() != before, 10, "the new config hash", cp)
        return f"/{name}/chat/completions", cp.expected_hash()

    def add_consumer(self, name: str, key: str) -> None:
        """A consumer with a key-auth key (data planes look keys up; no config change)."""
        created(self.cp, "/consumers", {"username": name})
        created(self.cp, f"/consumers/{name}/key-auth", {"key": key})

    def chat_statuses(self, key: str, path: str = CHAT_PATH) -> list[int]:
        """The status of one chat request with `key` through each data plane."""
        return [chat(url, path, key) for url in self.urls]


def created(cp: ControlPlane, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an entity through the Admin API, which must create it."""
    reply = cp.api("POST", path, json=body)
    assert reply.status_code == 201, f"POST {path}: {reply.status_code} {reply.text}"
    doc: dict[str, Any] = reply.json()
    return doc
