"""The answer of `POST /config`: decK's `diff --json-output` shape.

`{"changes": {"creating": [{kind, name}], "updating": [{kind, name, body: {old, new}}],
"deleting": [{kind, name}]}, "summary": {created, updated, deleted}}`. Update bodies are the
entity as the Admin API shows it, without timestamps (they always differ), key hashes as
`sha256:<hex>` markers and secret plugin fields redacted (see control_plane.declarative_secrets).
Creates and deletes carry no body: a first sync may create hundreds of thousands of entities.
"""

from __future__ import annotations

from typing import Any

from control_plane.declarative_secrets import Redactor
from control_plane.store.sync import Change, Plan, Written
from control_plane.store.sync_credentials import HASH_PREFIX
from gateway.entities import Entity, KeyAuthCredential, Plugin

_TIMESTAMPS = {"created_at", "updated_at"}


def entity_body(entity: Entity, redactor: Redactor) -> dict[str, Any]:
    """The entity as a diff shows it: no timestamps, no secret in clear."""
    body = entity.model_dump(mode="json", exclude=_TIMESTAMPS)
    if isinstance(entity, KeyAuthCredential):
        body["key_hash"] = HASH_PREFIX + entity.key_hash
    elif isinstance(entity, Plugin):
        body["config"] = redactor.plugin_config(entity.name, entity.config)
    return body


def report(plan: Plan, redactor: Redactor) -> dict[str, Any]:
    """The `/config` answer for `plan` (applied or, with dry_run, not)."""

    def items(changes: list[Change | Written]) -> list[dict[str, Any]]:
        return [{"kind": c.kind, "name": c.name} for c in changes]

    updating = [
        {
            "kind": c.kind,
            "name": c.name,
            "body": {
                "old": entity_body(c.old, redactor) if c.old is not None else None,
                "new": entity_body(c.entity, redactor),
            },
        }
        for c in plan.updating
    ]
    return {
        "changes": {
            "creating": items(plan.creating),
            "updating": updating,
            "deleting": items(plan.deleting),
        },
        "summary": {
            "created": len(plan.creating),
            "updated": len(plan.updating),
            "deleted": len(plan.deleting),
        },
    }
