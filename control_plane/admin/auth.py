"""Authentication and role checks for every Admin API request (ASGI middleware).

The token comes in `Kong-Admin-Token: <t>` or `Authorization: Bearer <t>`. It is either the
bootstrap token (role admin, actor "bootstrap") or an admin token from the store, looked up by
its SHA-256 and refused once expired. No valid token: Kong's 401 `{"message":"Unauthorized"}`;
a role that may not do this: 403 `{"message":"Forbidden: role '...' cannot ..."}`. Allowed
requests run with their `Caller` bound (see control_plane.admin.caller) and every response
carries `X-Kong-Admin-Request-ID`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.admin.caller import BOOTSTRAP_NAME, ROLES, Caller, bind_caller, unbind_caller
from control_plane.admin.errors import DATABASE_UNAVAILABLE
from control_plane.admin.roles import denial
from control_plane.admin_tokens import hash_token
from control_plane.store.protocol import AdminToken

TokenCheck = Callable[[str], bool]
Clock = Callable[[], float]

REQUEST_ID_HEADER = "X-Kong-Admin-Request-ID"
TOUCH_INTERVAL = 60.0
"""Seconds between `last_used_at` updates of one token (a write per request would serialize
every request on the database's write lock)."""

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = logging.getLogger("lockgate.cp.admin")


class TokenLookup(Protocol):
    """The store's admin-token lookups (control_plane.store.protocol.Store)."""

    def find_admin_token(self, token_hash: str) -> AdminToken | None: ...
    def touch_admin_token(self, token_id: str) -> None: ...


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


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-Id` when it is a sane token, else a new one."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


class TokenResolver:
    """Maps a presented token to its Caller: the bootstrap check first, then the store."""

    def __init__(self, bootstrap: TokenCheck, tokens: TokenLookup, clock: Clock) -> None:
        self._bootstrap = bootstrap
        self._tokens = tokens
        self._clock = clock

    def resolve(self, token: str, request_id: str) -> Caller | None:
        """Blocking (it may query the store): call it off the event loop."""
        if not token:
            return None
        if self._bootstrap(token):
            return Caller(BOOTSTRAP_NAME, "admin", request_id)
        found = self._tokens.find_admin_token(hash_token(token))
        now = self._clock()
        if found is None or found.role not in ROLES:
            return None
        if found.expires_at is not None and found.expires_at <= now:
            return None
        if found.last_used_at is None or now - found.last_used_at >= TOUCH_INTERVAL:
            self._tokens.touch_admin_token(found.id)
        return Caller(found.name, found.role, request_id)


async def _json(
    send: Send,
    status: int,
    body: dict[str, Any],
    request_id: str,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
                (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class AdminAuthMiddleware:
    """401 without a valid token, 403 for a role that may not call this, else the app with
    the caller bound."""

    def __init__(self, app: ASGIApp, resolver: TokenResolver) -> None:
        self._app = app
        self._resolver = resolver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = scope["headers"]
        request_id = _request_id(headers)
        token = presented_token(headers)
        caller = None
        if token is not None:
            try:
                caller = await run_in_threadpool(self._resolver.resolve, token, request_id)
            except (OperationalError, InterfaceError) as exc:  # tokens live in the database
                log.warning("database unavailable: %s", str(exc).splitlines()[0])
                body = {"message": DATABASE_UNAVAILABLE}
                await _json(send, 503, body, request_id, ((b"retry-after", b"1"),))
                return
        if caller is None:
            await _json(send, 401, {"message": "Unauthorized"}, request_id)
            return
        refused = denial(
            caller.role, scope["method"], scope["path"], scope.get("query_string", b"")
        )
        if refused is not None:
            await _json(send, 403, {"message": refused}, request_id)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())
                message = {**message, "headers": [*message.get("headers", []), extra]}
            await send(message)

        bound = bind_caller(caller)
        try:
            await self._app(scope, receive, send_with_id)
        finally:
            unbind_caller(bound)
