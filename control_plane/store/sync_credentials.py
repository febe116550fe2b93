"""Key-auth credentials as a declarative file gives them: a plaintext `key`, or the stored hash.

`GET /config` cannot export keys (only their SHA-256 is stored), so it exports
`key_hash: "sha256:<hex>"`; a sync accepts that marker instead of `key` and keeps the hash as is,
which is what makes dump -> sync into an empty control plane keep every key working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from control_plane.store.errors import SchemaViolation, single
from gateway.credentials import hash_key
from gateway.entities import KeyAuthCredential

HASH_PREFIX = "sha256:"


def parse_key_hash(value: object) -> str:
    """The hex digest in a `sha256:<hex>` marker; raises SchemaViolation on anything else."""
    if isinstance(value, str) and value.startswith(HASH_PREFIX):
        digest = value[len(HASH_PREFIX) :]
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return digest
    raise single("key_hash", f"expected '{HASH_PREFIX}' and 64 lowercase hex digits")


def credential_input(
    data: dict[str, Any],
    match: KeyAuthCredential | None,
    by_hash: Callable[[str], KeyAuthCredential | None],
    now: int,
) -> dict[str, Any]:
    """Builder input for a declared credential: `key` hashed or `key_hash` unwrapped (a matched
    stored credential keeps its hash when the file gives neither), and `ttl` turned into
    `expires_at`, keeping the stored expiry when the ttl did not change."""
    out = dict(data)
    key = out.pop("key", None)
    marker = out.pop("key_hash", None)
    if key is not None and marker is not None:
        message = "give either 'key' or 'key_hash', not both"
        raise SchemaViolation({"key": message}, [("key", message)])
    if marker is not None:
        out["key_hash"] = parse_key_hash(marker)
    elif isinstance(key, str) and key:
        out["key_hash"] = hash_key(key)
    elif key is None and match is not None:
        out["key_hash"] = match.key_hash
    else:
        message = "required field missing" if key is None else "expected a non-empty string"
        raise SchemaViolation({"key": message}, [("key", message)])
    ttl = out.get("ttl")
    if isinstance(ttl, int) and not isinstance(ttl, bool):
        stored = match if match is not None else by_hash(out["key_hash"])
        keep = stored is not None and stored.ttl == ttl
        out["expires_at"] = stored.expires_at if stored is not None and keep else now + ttl
    return out
