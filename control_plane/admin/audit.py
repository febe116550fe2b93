"""`GET /audit-logs`: who changed what, when, filtered and paginated (admin role only).

Filters: `actor` (a token name, "bootstrap" or "system"), `entity` (services, routes,
consumers, plugins, keyauth_credentials), `action` (create, update, delete), `since` and
`until` (epoch seconds or ISO 8601). `size` and `offset` page as every Kong list does.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from control_plane.admin.context import AdminContext
from control_plane.admin.errors import INVALID_OFFSET, AdminError
from control_plane.admin.listing import invalid_option, parse_size
from control_plane.store.protocol import AuditEntry

ACTIONS = ("create", "update", "delete")
_FILTERS = ("actor", "entity", "action", "since", "until")


def parse_time(field: str, raw: str) -> float:
    """Epoch seconds, or an ISO 8601 timestamp (UTC unless it names a zone)."""
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise invalid_option(field, "expected a finite number of seconds")
        return seconds
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid_option(field, "expected epoch seconds or an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.now().astimezone().tzinfo)
    return parsed.timestamp()


def render_entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "entity_name": entry.entity_name,
        "diff": entry.diff,
        "request_id": entry.request_id,
    }


def add_audit_routes(app: FastAPI, ctx: AdminContext) -> None:
    """Mount `GET /audit-logs`."""

    @app.get("/audit-logs", openapi_extra={"parameters": _PARAMETERS})
    async def audit_logs(request: Request) -> JSONResponse:
        params = request.query_params
        action = params.get("action")
        if action is not None and action not in ACTIONS:
            raise invalid_option("action", "expected one of: " + ", ".join(ACTIONS))
        since = params.get("since")
        until = params.get("until")
        size = parse_size(params.get("size"))
        try:
            entries, offset = await ctx.call(
                ctx.store.list_audit,
                actor=params.get("actor"),
                entity=params.get("entity"),
                action=action,
                since=None if since is None else parse_time("since", since),
                until=None if until is None else parse_time("until", until),
                size=size,
                offset=params.get("offset"),
            )
        except ValueError:
            raw = params.get("offset")
            raise AdminError(
                400,
                {
                    "code": INVALID_OFFSET,
                    "name": "invalid offset",
                    "message": f"'{raw}' is not a valid offset",
                },
            ) from None
        body: dict[str, Any] = {"data": [render_entry(e) for e in entries], "next": None}
        if offset is not None:
            kept = {k: params[k] for k in (*_FILTERS, "size") if k in params}
            body["offset"] = offset
            body["next"] = "/audit-logs?" + urlencode({"offset": offset, **kept})
        return JSONResponse(body)


_PARAMETERS: list[dict[str, Any]] = [
    {"name": name, "in": "query", "required": False, "schema": schema}
    for name, schema in (
        ("actor", {"type": "string"}),
        ("entity", {"type": "string"}),
        ("action", {"type": "string", "enum": list(ACTIONS)}),
        ("since", {"type": "string"}),
        ("until", {"type": "string"}),
        ("size", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ("offset", {"type": "string"}),
    )
]
