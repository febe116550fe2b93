"""Whether a data-plane node can run a snapshot (Kong's `check_version_compatibility` and
`check_configuration_compatibility`).

- Lockgate version: the major must match the control plane's; a node with a newer minor is
  refused (it may expect fields this control plane does not send); patches may differ.
- Plugins: every plugin the snapshot uses must be installed on the node, with the control
  plane's major version and a minor not newer than the control plane's.

An incompatible node keeps its connection and gets no config until it becomes compatible.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.snapshot import Snapshot


def _parse(version: str) -> tuple[int, int] | None:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return None


def check_version(node_version: str, cp_version: str) -> str | None:
    """Why a node of `node_version` cannot talk to this control plane, or None."""
    node, cp = _parse(node_version), _parse(cp_version)
    if node is None:
        return f"unparsable data plane version {node_version!r}"
    if cp is None or node[0] != cp[0]:
        return (
            f"data plane version {node_version} is incompatible with control plane version "
            f"{cp_version} (major versions differ)"
        )
    if node[1] > cp[1]:
        return (
            f"data plane version {node_version} is newer than control plane version "
            f"{cp_version} (minor)"
        )
    return None


def check_plugins(
    snapshot: Snapshot, node_plugins: Mapping[str, str], cp_plugins: Mapping[str, str]
) -> str | None:
    """Why a node with `node_plugins` (name -> version) cannot run `snapshot`, or None."""
    used = sorted({p.name for p in snapshot.plugins})
    missing = [name for name in used if name not in node_plugins]
    if missing:
        return f"plugins used by the configuration are not installed on the node: {missing}"
    for name in used:
        node, cp = _parse(node_plugins[name]), _parse(cp_plugins.get(name, ""))
        if cp is None:
            continue  # unknown to this control plane: it could not have validated it anyway
        if node is None or node[0] != cp[0] or node[1] > cp[1]:
            return (
                f"plugin {name} version {node_plugins[name]} on the node is incompatible "
                f"with version {cp_plugins[name]} on the control plane"
            )
    return None


def check(
    snapshot: Snapshot,
    *,
    node_version: str,
    node_plugins: Mapping[str, str],
    cp_version: str,
    cp_plugins: Mapping[str, str],
) -> str | None:
    """The first reason the node cannot run `snapshot`, or None if it can."""
    return check_version(node_version, cp_version) or check_plugins(
        snapshot, node_plugins, cp_plugins
    )
