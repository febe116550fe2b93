"""`/admin-tokens`: create (the plaintext shown once), list and revoke admin tokens.

Only the admin role reaches these paths (control_plane.admin.roles). The store keeps each
token's SHA-256 digest; no response ever carries a digest.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from control_plane.admin.body import read_body
from control_plane.admin.caller import Role, current_caller
from control_plane.admin.context import AdminContext
from control_plane.admin.errors import not_found
from control_plane.admin_tokens import hash_token, new_token
from control_plane.store.protocol import AdminToken
from control_plane.store.validation import violation
from gateway.entities import NAME_RE, now_s

MAX_TTL = 100_000_000


class TokenRequest(BaseModel):
    """The body of `POST /admin-tokens`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=255, pattern=NAME_RE.pattern)]
    role: Role
    ttl: Annotated[int, Field(ge=1, le=MAX_TTL)] | None = None
    """Seconds until the token stops working; none: it never expires."""


def render_token(token: AdminToken) -> dict[str, Any]:
    """A stored token as the API shows it: never its digest."""
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "expires_at": token.expires_at,
    }


def add_token_routes(app: FastAPI, ctx: AdminContext) -> None:
    """Mount `POST/GET /admin-tokens` and `GET/DELETE /admin-tokens/{id or name}`."""

    @app.post("/admin-tokens", status_code=201, openapi_extra=_token_body())
    async def create(request: Request) -> JSONResponse:
        body = await read_body(request)
        try:
            wanted = TokenRequest.model_validate(body)
        except ValidationError as exc:
            raise violation(exc) from None
        plaintext = new_token()
        expires_at = None if wanted.ttl is None else now_s() + wanted.ttl
        created = await ctx.call(
            ctx.store.create_admin_token,
            wanted.name,
            wanted.role,
            hash_token(plaintext),
            expires_at,
            **_attribution(),
        )
        return JSONResponse({**render_token(created), "token": plaintext}, status_code=201)

    @app.get("/admin-tokens")
    async def listing() -> JSONResponse:
        tokens = await ctx.call(ctx.store.list_admin_tokens)
        return JSONResponse({"data": [render_token(t) for t in tokens], "next": None})

    @app.get("/admin-tokens/{token}")
    async def one(token: str) -> JSONResponse:
        for found in await ctx.call(ctx.store.list_admin_tokens):
            if token in (found.id, found.name):
                return JSONResponse(render_token(found))
        raise not_found()

    @app.delete("/admin-tokens/{token}", status_code=204)
    async def revoke(token: str) -> Response:
        if not await ctx.call(ctx.store.revoke_admin_token, token, **_attribution()):
            raise not_found()
        return Response(status_code=204)


def _attribution() -> dict[str, Any]:
    """`actor` and `request_id` for the store's audit entry of a token change."""
    caller = current_caller()
    if caller is None:
        return {}
    return {"actor": caller.name, "request_id": caller.request_id}


def _token_body() -> dict[str, Any]:
    schema = TokenRequest.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }
