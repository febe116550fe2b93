"""Errors of a declarative sync, in Kong's `invalid declarative configuration` shape: one
message naming every bad entity by its place in the document, and `fields` nested the same way
(`{"services": [{"routes": [null, {"paths": "..."}]}]}`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from control_plane.store.errors import (
    ForeignKeyViolation,
    SchemaViolation,
    StoreError,
    UniqueViolation,
)

_TOKEN = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")


@dataclass(frozen=True, slots=True)
class SyncProblem:
    path: str
    """Where the entity is in the document, e.g. `services[0].routes[1]`."""
    label: str | None
    error: StoreError

    def describe(self) -> str:
        where = f"{self.path} ({self.label})" if self.label else self.path
        if isinstance(self.error, SchemaViolation):
            detail = "; ".join(
                msg if dotted in ("", "@entity") else f"{dotted}: {msg}"
                for dotted, msg in self.error.messages
            )
        else:
            detail = str(self.error)
        return f"{where}: {detail}"

    def fields(self) -> Any:
        error = self.error
        if isinstance(error, SchemaViolation | UniqueViolation):
            return error.fields
        if isinstance(error, ForeignKeyViolation) and error.field is not None:
            return {error.field: str(error)}
        return str(error)


class SyncError(StoreError):
    """A declarative config that cannot be applied; nothing was written."""

    def __init__(self, problems: list[SyncProblem]) -> None:
        self.problems = problems
        self.fields: dict[str, Any] = {}
        for problem in problems:
            place(self.fields, problem.path, problem.fields())
        details = "; ".join(p.describe() for p in problems)
        super().__init__(f"declarative config is invalid: {details}")

    @staticmethod
    def from_store_error(path: str, label: str | None, error: StoreError) -> SyncError:
        return SyncError([SyncProblem(path, label, error)])


def place(fields: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at a document path (`a[0].b[2]`) inside nested dicts and null-padded lists."""
    tokens = [(m.group(1), m.group(2)) for m in _TOKEN.finditer(path)]
    node: Any = fields
    for position, (key, index) in enumerate(tokens):
        last = position == len(tokens) - 1
        if index is None:
            if last:
                node[key] = value
                return
            node = node.setdefault(key, {})
            continue
        items = node.setdefault(key, [])
        i = int(index)
        items.extend([None] * (i + 1 - len(items)))
        if last:
            items[i] = dict(value) if isinstance(value, dict) else value
            return
        if not isinstance(items[i], dict):
            items[i] = {}
        node = items[i]
