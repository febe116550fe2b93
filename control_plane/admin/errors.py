"""Kong's Admin API error bodies (kong/db/errors.lua, kong/api/endpoints.lua) and the handlers
that turn exceptions into them. Client input never produces a 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from control_plane.store.errors import (
    ConflictError,
    ForeignKeyViolation,
    SchemaViolation,
    StoreError,
    UniqueViolation,
)

SCHEMA_VIOLATION = 2
FOREIGN_KEY_VIOLATION = 4
UNIQUE_VIOLATION = 5
INVALID_OFFSET = 7
INVALID_SIZE = 9
INVALID_OPTIONS = 11
DECLARATIVE_CONFIG = 14
DATABASE_UNAVAILABLE = "The database is unavailable; retry the request"

log = logging.getLogger("lockgate.cp.admin")


class AdminError(Exception):
    """An error response with a ready Kong body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        super().__init__(body.get("message", ""))


def not_found() -> AdminError:
    return AdminError(404, {"message": "Not found"})


def bad_request(message: str) -> AdminError:
    return AdminError(400, {"message": message})


def store_error_body(exc: StoreError) -> tuple[int, dict[str, Any]]:
    """Status and Kong body for a store error."""
    if isinstance(exc, SchemaViolation):
        body = {"code": SCHEMA_VIOLATION, "name": "schema violation", "message": str(exc)}
        return 400, {**body, "fields": exc.fields}
    if isinstance(exc, UniqueViolation):
        body = {"code": UNIQUE_VIOLATION, "name": "unique constraint violation"}
        return 409, {**body, "message": str(exc), "fields": exc.fields}
    if isinstance(exc, ForeignKeyViolation):
        body = {"code": FOREIGN_KEY_VIOLATION, "name": "foreign key violation", "message": str(exc)}
        if exc.field is not None:
            body["fields"] = {exc.field: exc.ref}
        return 400, body
    if isinstance(exc, ConflictError):
        return 409, {
            "code": UNIQUE_VIOLATION,
            "name": "unique constraint violation",
            "message": "a concurrent write conflicted with this one; retry it",
        }
    return 400, {"message": str(exc)}


def install_handlers(app: FastAPI) -> None:
    """Map every error the Admin API can raise to Kong's status and body."""

    @app.exception_handler(AdminError)
    async def _admin(_: Request, exc: AdminError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        status, body = store_error_body(exc)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # The database is down, restarting or cut the connection: a clear, retryable answer
        # instead of a bare 500 (the pool's pre-ping reconnects once it is back).
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        return JSONResponse(
            {"message": DATABASE_UNAVAILABLE}, status_code=503, headers={"Retry-After": "1"}
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        messages = {404: "Not found", 405: "Method not allowed"}
        message = messages.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            {"message": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"message": "invalid request"}, status_code=400)
