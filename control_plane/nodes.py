"""The registry of data-plane nodes: who is connected, what config each runs, and why not."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SyncStatus = Literal["in_sync", "out_of_sync", "incompatible", "disconnected"]


@dataclass(slots=True)
class NodeStatus:
    id: str
    hostname: str
    ip: str
    version: str
    labels: dict[str, str]
    plugins: dict[str, str]
    config_hash: str = ""
    config_version: int = 0
    sync_status: SyncStatus = "out_of_sync"
    last_seen: int = field(default_factory=lambda: int(time.time()))
    last_error: str | None = None
    connected: bool = True

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("connected")
        doc["updated_at"] = doc["last_seen"]
        return doc


class NodeRegistry:
    """In-memory node table, owned by the control plane's event loop."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeStatus] = {}
        self.expected_hash = ""

    def connect(self, node: NodeStatus) -> NodeStatus:
        self._nodes[node.id] = node
        self._refresh(node)
        return node

    def seen(
        self, node_id: str, *, config_hash: str | None = None, version: int | None = None
    ) -> None:
        node = self._nodes.get(node_id)
        if node is None:
            return
        node.last_seen = int(time.time())
        if config_hash is not None:
            node.config_hash = config_hash
        if version is not None:
            node.config_version = version
        self._refresh(node)

    def rejected(self, node_id: str, error: str) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            node.last_seen = int(time.time())
            node.last_error = error
            self._refresh(node)

    def disconnect(self, node_id: str) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            node.connected = False
            node.sync_status = "disconnected"

    def set_expected(self, config_hash: str) -> None:
        self.expected_hash = config_hash
        for node in self._nodes.values():
            self._refresh(node)

    def list(self) -> list[NodeStatus]:
        return sorted(self._nodes.values(), key=lambda n: (n.hostname, n.id))

    def _refresh(self, node: NodeStatus) -> None:
        if not node.connected:
            node.sync_status = "disconnected"
        elif node.config_hash and node.config_hash == self.expected_hash:
            node.sync_status = "in_sync"
            node.last_error = None
        else:
            node.sync_status = "out_of_sync"
