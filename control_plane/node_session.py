"""What the control plane sends one connected node, and what it learns from the node's replies.

The session tracks the hash the node will run once it has applied everything sent so far
(`base_hash`), so each new snapshot goes out as a delta from there when possible (xDS: never
resend what the node has). A Nack records the error and remembers the rejected hash so it is
not pushed again; a Resync (a delta did not apply) makes the next message a full snapshot. A node
that cannot run the config gets an `Incompatible` notice and no config, and stays connected.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping

from control_plane import compatibility
from control_plane.nodes import NodeRegistry, NodeStatus
from control_plane.publisher import Publisher
from gateway.snapshot import Snapshot
from gateway.snapshot_delta import SnapshotDelta
from lockgate.v1 import cluster_pb2 as pb

log = logging.getLogger("lockgate.cp.sync")


class NodeSession:
    def __init__(
        self,
        record: NodeStatus,
        hello: pb.Hello,
        publisher: Publisher,
        nodes: NodeRegistry,
        *,
        cp_version: str,
        cp_plugins: Mapping[str, str],
    ) -> None:
        self.record = record
        self.base_hash: str | None = hello.config_hash or None
        self._deltas = hello.accepts_deltas
        self._publisher = publisher
        self._nodes = nodes
        self._cp_version = cp_version
        self._cp_plugins = cp_plugins
        self._rejected: set[str] = set()
        self._notified: str | None = None
        self._confirmed = False

    async def next_messages(self) -> list[pb.ControlMessage]:
        """What to send now that the current snapshot changed (or the node asked again)."""
        snapshot = self._publisher.current
        if snapshot is None:
            return []
        node = self.record
        reason = compatibility.check(
            snapshot,
            node_version=node.version,
            node_plugins=node.plugins,
            cp_version=self._cp_version,
            cp_plugins=self._cp_plugins,
        )
        self._nodes.incompatible(node.id, reason)
        if reason is not None:
            if reason == self._notified:
                return []
            log.warning("node %s is incompatible: %s", node.id, reason)
            self._notified = reason
            return [pb.ControlMessage(incompatible=pb.Incompatible(reason=reason))]
        self._notified = None
        if snapshot.hash == self.base_hash:
            if self._confirmed:
                return []
            # The node already runs it (from its cache, or another control plane): an empty
            # delta confirms that, and the node acks it without recompiling.
            self._confirmed = True
            return [_confirmation(snapshot)]
        if snapshot.hash in self._rejected:
            return []
        message = await self._publisher.message_for(self.base_hash if self._deltas else None)
        target = message.delta.hash if message.HasField("delta") else message.snapshot.hash
        if target == self.base_hash:
            return []  # current moved on while building; the next update brings the newer one
        self.base_hash = target
        self._confirmed = True
        return [message]

    def on_message(self, message: pb.NodeMessage) -> bool:
        """Record a message from the node; True if the session should re-evaluate what to send
        (the node asked for a full snapshot)."""
        kind = message.WhichOneof("msg")
        node_id = self.record.id
        if kind == "ack":
            self._nodes.applied(node_id, config_hash=message.ack.hash, version=message.ack.version)
        elif kind == "nack":
            nack = message.nack
            log.warning("node %s rejected version %d: %s", node_id, nack.version, nack.error)
            self._rejected.add(nack.hash)
            self.base_hash = nack.running_hash or None
            self._nodes.rejected(node_id, nack.error)
            self._nodes.seen(node_id, config_hash=nack.running_hash, version=nack.running_version)
        elif kind == "resync":
            resync = message.resync
            log.info("node %s asks for a full snapshot: %s", node_id, resync.reason)
            self.base_hash = None
            self._nodes.seen(
                node_id, config_hash=resync.running_hash, version=resync.running_version
            )
            return True
        elif kind == "heartbeat":
            beat = message.heartbeat
            self._nodes.seen(node_id, config_hash=beat.config_hash, version=beat.config_version)
        return False


def _confirmation(snapshot: Snapshot) -> pb.ControlMessage:
    payload = SnapshotDelta(snapshot.version, snapshot.hash, snapshot.version, snapshot.hash)
    return pb.ControlMessage(
        delta=pb.Delta(
            base_version=snapshot.version,
            base_hash=snapshot.hash,
            version=snapshot.version,
            hash=snapshot.hash,
            encoding="json+gzip",
            payload=gzip.compress(payload.encode()),
        )
    )
