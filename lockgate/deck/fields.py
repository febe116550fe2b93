"""The decK entity kinds Lockgate accepts, and the fields each may carry: the one place for them.

Field sets come from the stored entity models in `gateway.entities` (the Admin API shapes), plus
what decK adds (the `url` shorthand on services, nested child lists, plaintext `key` on
credentials), so a field added to an entity is accepted here without a second list to update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.entities import Consumer, Plugin, Route, Service

FORMAT_VERSION = "3.0"

# Top-level keys that carry settings rather than entities; merged across files only if equal.
META_KEYS = frozenset({"_format_version", "_info", "_transform", "_konnect", "_workspace"})

# decK entity types that Lockgate does not implement (yet): named, so the error says so.
UNSUPPORTED_TOP_LEVEL = frozenset(
    {
        "ca_certificates",
        "certificates",
        "consumer_groups",
        "custom_entities",
        "degraphql_routes",
        "filter_chains",
        "graphql_rate_limiting_cost_decorations",
        "key_sets",
        "keys",
        "licenses",
        "partials",
        "rbac_roles",
        "snis",
        "targets",
        "upstreams",
        "vaults",
    }
)

# Credential and group types decK nests under consumers; Lockgate only has key-auth.
UNSUPPORTED_CONSUMER_CHILDREN = frozenset(
    {
        "acls",
        "basicauth_credentials",
        "groups",
        "hmacauth_credentials",
        "jwt_secrets",
        "mtls_auth_credentials",
        "oauth2_credentials",
    }
)


@dataclass(frozen=True, slots=True)
class EntityKind:
    """One decK entity type: its own fields, the child lists it may nest, how it is labelled."""

    kind: str
    fields: frozenset[str]
    label_fields: tuple[str, ...]
    children: Mapping[str, str] = field(default_factory=dict)
    unsupported_children: frozenset[str] = frozenset()

    def label(self, entity: Mapping[str, object]) -> str | None:
        """The name a user knows the entity by (first label field set), for messages."""
        for name in self.label_fields:
            value = entity.get(name)
            if isinstance(value, str) and value:
                return value
        return None


KINDS: dict[str, EntityKind] = {
    "service": EntityKind(
        "service",
        frozenset(Service.model_fields) | {"url"},
        ("name", "id"),
        {"routes": "route", "plugins": "plugin"},
    ),
    "route": EntityKind(
        "route", frozenset(Route.model_fields), ("name", "id"), {"plugins": "plugin"}
    ),
    "consumer": EntityKind(
        "consumer",
        frozenset(Consumer.model_fields),
        ("username", "custom_id", "id"),
        {"keyauth_credentials": "keyauth_credential", "plugins": "plugin"},
        UNSUPPORTED_CONSUMER_CHILDREN,
    ),
    "plugin": EntityKind("plugin", frozenset(Plugin.model_fields), ("name", "id")),
    # The stored form keeps only a hash; a decK file gives the plaintext `key`, or (in a dump)
    # the stored hash as `key_hash: "sha256:<hex>"`, which a sync keeps.
    "keyauth_credential": EntityKind(
        "keyauth_credential",
        frozenset({"id", "key", "key_hash", "tags", "ttl", "created_at"}),
        ("id",),
    ),
}

# Top-level entity lists and the kind of their items.
TOP_LEVEL: dict[str, str] = {
    "services": "service",
    "routes": "route",
    "consumers": "consumer",
    "plugins": "plugin",
}
