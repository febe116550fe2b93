"""Admin tokens: the bootstrap token and how every admin token is made and stored.

The bootstrap token is given by LOCKGATE_ADMIN_TOKEN, or created on first start and shown once;
only its SHA-256 is kept on disk (`admin_token.sha256` in the data directory). It has the admin
role and acts as "bootstrap". Tokens made through `POST /admin-tokens` live in the store, also
only as SHA-256 digests: they are 256-bit random values, so a fast hash is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

TOKEN_PREFIX = "lgadm_"  # noqa: S105 (a visible prefix, not a secret)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a token is stored and looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random admin token (`lgadm_` + 43 url-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    """Checks a presented token against the bootstrap token digests (constant time)."""

    digests: frozenset[str]

    def __call__(self, token: str) -> bool:
        candidate = hash_token(token)
        ok = False
        for digest in self.digests:
            ok |= hmac.compare_digest(candidate, digest)
        return ok


def bootstrap(data_dir: Path, configured: str | None) -> tuple[TokenVerifier, str | None]:
    """The verifier for the bootstrap token, and the new token to print if one was just
    created."""
    if configured:
        return TokenVerifier(frozenset({hash_token(configured)})), None
    path = data_dir / "admin_token.sha256"
    if path.exists():
        return TokenVerifier(frozenset({path.read_text().strip()})), None
    token = new_token()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(hash_token(token) + "\n")
    return TokenVerifier(frozenset({hash_token(token)})), token
