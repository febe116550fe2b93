"""Audit log: who changed what and when (admin role, as `GET /audit-logs`), filtered and paged
with the store's own listing."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import Response

from control_plane.admin.audit import ACTIONS, parse_time, render_entry
from control_plane.admin.errors import AdminError
from control_plane.store.protocol import AuditEntry
from control_plane.ui.context import Ui

ENTITIES = (
    "services",
    "routes",
    "consumers",
    "plugins",
    "keyauth_credentials",
    "admin_tokens",
    "ui_users",
)


def add_audit_routes(app: FastAPI, ui: Ui) -> None:
    """Mount `/audit`."""

    @app.get("/audit")
    async def audit(request: Request) -> Response:
        session = await ui.session(request)
        ui.allow(session, "GET", "/audit-logs")
        params = request.query_params
        filters = {k: params.get(k) or None for k in ("actor", "entity", "action", "since")}
        if filters["action"] not in (None, *ACTIONS):
            filters["action"] = None
        error = None
        entries: list[AuditEntry] = []
        offset: str | None = None
        try:
            since = None if filters["since"] is None else parse_time("since", filters["since"])
            entries, offset = await ui.admin.call(
                ui.admin.store.list_audit,
                actor=filters["actor"],
                entity=filters["entity"],
                action=filters["action"],
                since=since,
                size=50,
                offset=params.get("offset") or None,
            )
        except (ValueError, AdminError):
            error = "That filter or page link is not valid."
        rows = [
            {**render_entry(e), "diff_text": json.dumps(e.diff, indent=2, sort_keys=True)}
            for e in entries
        ]
        return ui.page(
            request,
            session,
            "audit.html",
            rows=rows,
            filters=filters,
            actions=ACTIONS,
            entities=ENTITIES,
            next_offset=offset,
            error=error,
        )
