"""Turning the control plane's config messages into snapshots (pure, runs in a worker thread).

A full `Snapshot` message that cannot be decoded or verified is `Rejected` (the node Nacks it); a
`Delta` that does not apply to what the node runs is `Unusable` (the node asks for a full one).
"""

from __future__ import annotations

import gzip

from gateway.snapshot import Snapshot
from gateway.snapshot_delta import DeltaError, SnapshotDelta, apply_delta
from lockgate.v1 import cluster_pb2 as pb


class Rejected(Exception):
    """The config is invalid: Nack it and keep the last good one."""


class Unusable(Exception):
    """A delta does not apply here: ask for the full snapshot (Resync)."""


def decode_snapshot(msg: pb.Snapshot) -> Snapshot:
    """The snapshot a full message carries; raises Rejected if it is malformed or its hash is
    not the announced one."""
    if msg.encoding != "json+gzip":
        raise Rejected(f"unsupported snapshot encoding {msg.encoding!r}")
    try:
        snapshot = Snapshot.decode(gzip.decompress(msg.payload))
    except (OSError, EOFError, ValueError) as exc:
        raise Rejected(str(exc)) from exc
    if snapshot.hash != msg.hash:
        raise Rejected("snapshot hash does not match its content")
    return snapshot


def decode_delta(base: Snapshot | None, msg: pb.Delta) -> Snapshot:
    """The snapshot `msg` leads to from `base` (what the node runs); raises Unusable if `base`
    is not the delta's base, the payload is malformed, or the result's hash is not `msg.hash`."""
    if base is None or base.hash != msg.base_hash:
        running = base.hash[:12] if base is not None else "nothing"
        raise Unusable(f"delta for {msg.base_hash[:12]}, running {running}")
    if msg.encoding != "json+gzip":
        raise Unusable(f"unsupported delta encoding {msg.encoding!r}")
    try:
        delta = SnapshotDelta.decode(gzip.decompress(msg.payload))
        if (delta.version, delta.hash) != (msg.version, msg.hash):
            raise DeltaError("delta payload does not match its header")
        return apply_delta(base, delta)
    except (OSError, EOFError, DeltaError) as exc:
        raise Unusable(str(exc)) from exc
