"""The bootstrap admin token: given by LOCKGATE_ADMIN_TOKEN, or created on first start and shown
once. Only its SHA-256 is kept on disk (`admin_token.sha256` in the data directory)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    digests: frozenset[str]

    def __call__(self, token: str) -> bool:
        candidate = _digest(token)
        ok = False
        for digest in self.digests:
            ok |= hmac.compare_digest(candidate, digest)
        return ok


def bootstrap(data_dir: Path, configured: str | None) -> tuple[TokenVerifier, str | None]:
    """The verifier for admin tokens, and the new token to print if one was just created."""
    if configured:
        return TokenVerifier(frozenset({_digest(configured)})), None
    path = data_dir / "admin_token.sha256"
    if path.exists():
        return TokenVerifier(frozenset({path.read_text().strip()})), None
    token = "lgadm_" + secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(_digest(token) + "\n")
    return TokenVerifier(frozenset({_digest(token)})), token
