"""Admin token check for every Admin API request (ASGI middleware).

The token comes in `Kong-Admin-Token: <t>` or `Authorization: Bearer <t>`; anything else gets
Kong's 401 `{"message":"Unauthorized"}`. Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

TokenCheck = Callable[[str], bool]

_UNAUTHORIZED = json.dumps({"message": "Unauthorized"}).encode()


def token_check(admin_token: str | TokenCheck) -> TokenCheck:
    """A checker for a fixed token (constant-time compare), or the given checker itself."""
    if callable(admin_token):
        return admin_token
    if not admin_token:
        raise ValueError("an admin token is required")
    expected = admin_token.encode()
    return lambda candidate: hmac.compare_digest(candidate.encode(), expected)


def presented_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token a request presents, if any."""
    for name, value in headers:
        lname = name.lower()
        if lname == b"kong-admin-token":
            return value.decode("latin-1")
        if lname == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class AdminTokenMiddleware:
    def __init__(self, app: ASGIApp, check: TokenCheck) -> None:
        self._app = app
        self._check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        token = presented_token(scope["headers"])
        if token is not None and self._check(token):
            await self._app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})
