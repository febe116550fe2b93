"""The registry of data-plane nodes: who is connected, what config each runs, and why not.

A node's `sync_status` is derived, in this order: `disconnected` (stream closed, or no heartbeat
for `heartbeat_timeout_s`, e.g. a frozen process whose TCP connection stays open),
`incompatible` (it cannot run the current config; `last_error` says why), `in_sync` (it runs
the expected hash), else `out_of_sync`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

SyncStatus = Literal["in_sync", "out_of_sync", "incompatible", "disconnected"]

MISSED_HEARTBEATS = 3
"""A node is disconnected after this many heartbeat intervals without a message."""


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
    heartbeat_timeout_s: float = 30.0
    connected: bool = True
    incompatible_reason: str | None = None
    connected_at: int = field(default_factory=lambda: int(time.time()))
    last_seen_mono: float = field(default_factory=time.monotonic)

    def as_json(self) -> dict[str, Any]:
        """Kong's `/clustering/data-planes` row plus Lockgate's sync fields."""
        return {
            "id": self.id,
            "hostname": self.hostname,
            "ip": self.ip,
            "version": self.version,
            "labels": self.labels,
            "plugins": self.plugins,
            "config_hash": self.config_hash,
            "config_version": self.config_version,
            "applied_version": self.config_version,
            "sync_status": self.sync_status,
            "compatibility_status": "incompatible" if self.incompatible_reason else "compatible",
            "last_seen": self.last_seen,
            "updated_at": self.last_seen,
            "connected_at": self.connected_at,
            "last_error": self.last_error,
        }


class NodeRegistry:
    """In-memory node table, owned by the control plane's event loop."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeStatus] = {}
        self.expected_hash = ""

    def connect(self, node: NodeStatus) -> NodeStatus:
        """A node opened a stream (replacing any earlier record of the same id)."""
        previous = self._nodes.get(node.id)
        if previous is not None and previous.last_error and not node.last_error:
            node.last_error = previous.last_error
        self._nodes[node.id] = node
        self._refresh(node)
        return node

    def get(self, node_id: str) -> NodeStatus | None:
        return self._nodes.get(node_id)

    def seen(
        self, node_id: str, *, config_hash: str | None = None, version: int | None = None
    ) -> None:
        """A message arrived from the node; with the hash/version it runs when given."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        node.last_seen = int(time.time())
        node.last_seen_mono = time.monotonic()
        node.connected = True
        if config_hash is not None:
            node.config_hash = config_hash
        if version is not None:
            node.config_version = version
        self._refresh(node)

    def applied(self, node_id: str, *, config_hash: str, version: int) -> None:
        """The node acked a snapshot: it runs it, and any earlier error is resolved."""
        node = self._nodes.get(node_id)
        if node is not None and node.incompatible_reason is None:
            node.last_error = None
        self.seen(node_id, config_hash=config_hash, version=version)

    def rejected(self, node_id: str, error: str) -> None:
        """The node nacked a snapshot: it keeps its last good one; record why."""
        node = self._nodes.get(node_id)
        if node is not None:
            node.last_error = error
            self.seen(node_id)

    def incompatible(self, node_id: str, reason: str | None) -> None:
        """Mark the node as unable to run the current config (`reason`), or able (None)."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        if reason is None and node.incompatible_reason is not None:
            node.last_error = None
        elif reason is not None:
            node.last_error = reason
        node.incompatible_reason = reason
        self._refresh(node)

    def disconnect(self, record: NodeStatus) -> None:
        """The stream of `record` (what `connect` returned) closed. A newer stream of the same
        node (a reconnect the old stream's end raced with) is left alone."""
        node = self._nodes.get(record.id)
        if node is record:
            node.connected = False
            self._refresh(node)

    def expire(self, now: float | None = None) -> list[str]:
        """Mark nodes silent for longer than their heartbeat timeout as disconnected; returns
        their ids. A later message from the node reconnects it."""
        now = time.monotonic() if now is None else now
        expired = []
        for node in self._nodes.values():
            if node.connected and now - node.last_seen_mono > node.heartbeat_timeout_s:
                node.connected = False
                self._refresh(node)
                expired.append(node.id)
        return expired

    async def watch_heartbeats(self, interval_s: float = 0.5) -> None:
        """Run `expire` every `interval_s`, forever."""
        while True:
            await asyncio.sleep(interval_s)
            self.expire()

    def set_expected(self, config_hash: str) -> None:
        self.expected_hash = config_hash
        for node in self._nodes.values():
            self._refresh(node)

    def list(self) -> list[NodeStatus]:
        return sorted(self._nodes.values(), key=lambda n: (n.hostname, n.id))

    def _refresh(self, node: NodeStatus) -> None:
        if not node.connected:
            node.sync_status = "disconnected"
        elif node.incompatible_reason is not None:
            node.sync_status = "incompatible"
        elif node.config_hash and node.config_hash == self.expected_hash:
            node.sync_status = "in_sync"
        else:
            node.sync_status = "out_of_sync"
