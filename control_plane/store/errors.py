"""Store errors. Each carries what Kong's Admin API error body needs (kong/db/errors.lua)."""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """Base of the errors a write can raise because of its input."""


class SchemaViolation(StoreError):
    """The input does not fit the entity schema.

    `fields` is Kong's nested field -> message map (`@entity` for whole-entity checks);
    `messages` the same errors as (dotted path, message) pairs, in order.
    """

    def __init__(self, fields: dict[str, Any], messages: list[tuple[str, str]]) -> None:
        self.fields = fields
        self.messages = messages
        super().__init__(describe(messages))


def describe(messages: list[tuple[str, str]]) -> str:
    """Kong's summary: `schema violation (host: required field missing)`."""
    parts = [f"{path}: {msg}" if path and path != "@entity" else msg for path, msg in messages]
    if len(parts) == 1:
        return f"schema violation ({parts[0]})"
    return f"{len(parts)} schema violations ({'; '.join(parts)})"


def single(path: str, message: str) -> SchemaViolation:
    """A SchemaViolation on one top-level field (or `@entity`)."""
    value: Any = [message] if path == "@entity" else message
    return SchemaViolation({path: value}, [(path, message)])


class ConflictError(StoreError):
    """The database refused a commit (a concurrent writer won a race on a unique value)."""


class UniqueViolation(StoreError):
    """A unique column (or plugin cache key) already holds this value. `fields` names it."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        super().__init__(f"UNIQUE violation detected on '{lua_pretty(fields)}'")


class ForeignKeyViolation(StoreError):
    """A foreign key points at nothing (`field` is set) or a delete is refused because
    other entities still reference the row (`field` is None)."""

    def __init__(self, message: str, field: str | None = None, ref: Any = None) -> None:
        self.field = field
        self.ref = ref
        super().__init__(message)

    @staticmethod
    def invalid_reference(field: str, ref_id: str, parent: str) -> ForeignKeyViolation:
        ref = {"id": ref_id}
        return ForeignKeyViolation(
            f"the foreign key '{lua_pretty(ref)}' does not reference "
            f"an existing '{parent}' entity.",
            field,
            ref,
        )

    @staticmethod
    def restricted(parent: str, child: str) -> ForeignKeyViolation:
        return ForeignKeyViolation(
            f"an existing '{child}' entity references this '{parent}' entity"
        )


def lua_pretty(value: Any) -> str:
    """Render a value the way Kong's messages print Lua tables: `{name="x"}`, keys sorted."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={lua_pretty(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
