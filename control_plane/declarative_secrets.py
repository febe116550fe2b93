"""Secrets in declarative bodies: how they are shown in `/config` diffs and sanitized dumps.

Which values are secret is decided by control_plane.store.redact, the same walk the audit log
uses: key-auth key hashes, plugin config fields the plugin's JSON Schema marks `writeOnly`, and
fields with a well-known secret name (ai-proxy's `auth.header_value`/`auth.param_value`,
`password`, `client_secret`, ...). A `Redactor` only chooses the mask: a salted fingerprint.
Equal values get equal fingerprints within one answer (so a diff still shows that a secret
changed) and the salt is random per answer (so fingerprints cannot be compared across answers
or brute-forced from a dump).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from control_plane.store.redact import Schema, redact_config
from gateway.plugins.base import Plugin as PluginType


class Redactor:
    """Replaces secret values by `[redacted:<fingerprint>]` (diff bodies) or by the bare
    salted digest (`sanitize`d dumps, where the value must stay a usable string)."""

    def __init__(self, available: Mapping[str, PluginType[Any]], *, bare: bool = False) -> None:
        self._available = available
        self._bare = bare
        self._salt = secrets.token_bytes(16)
        self._schemas: dict[str, Schema] = {}

    def mask(self, value: object) -> str:
        """The placeholder for one secret value."""
        digest = hashlib.sha256(self._salt + repr(value).encode()).hexdigest()
        return digest if self._bare else f"[redacted:{digest[:12]}]"

    def plugin_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """`config` of plugin `name` with its secret fields replaced."""
        return redact_config(config, self._schema(name), self.mask)

    def _schema(self, name: str) -> Schema:
        if name not in self._schemas:
            plugin = self._available.get(name)
            self._schemas[name] = {} if plugin is None else plugin.config_model.model_json_schema()
        return self._schemas[name]
