"""Form fields of the entity pages: how a value is drawn into a form and read back.

Blank text means "not set" (omitted on create, cleared on edit; a blank number keeps its
value); list fields take one item
per line or comma-separated; a missing checkbox is False; a `ref` is a foreign entity chosen
from a list (`{"id": ...}`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from control_plane.ui.context import Form

Widget = Literal["text", "list", "bool", "number", "ref"]
_SPLIT = re.compile(r"[\n,]")


class FieldError(ValueError):
    """A value that cannot be read (e.g. a non-number); `field` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    widget: Widget = "text"
    help: str = ""
    required: bool = False
    placeholder: str = ""

    def shown(self, entity: Mapping[str, Any]) -> Any:
        """The form value for a stored entity (rendered JSON)."""
        value = entity.get(self.name)
        if self.widget == "list":
            return "\n".join(str(v) for v in value or ())
        if self.widget == "ref":
            return (value or {}).get("id", "")
        if self.widget == "bool":
            return bool(value)
        return "" if value is None else str(value)

    def read(self, form: Form, creating: bool) -> tuple[bool, Any]:
        """(present, value) from a submitted form; FieldError for an unreadable value."""
        if self.widget == "bool":
            return True, form.has(self.name)
        raw = form.get(self.name).strip()
        if not raw:
            # Blank clears an optional value on edit; numbers all have defaults: keep them.
            return (not creating and self.widget != "number"), None
        if self.widget == "list":
            return True, [item.strip() for item in _SPLIT.split(raw) if item.strip()]
        if self.widget == "ref":
            return True, {"id": raw}
        if self.widget == "number":
            try:
                return True, int(raw)
            except ValueError:
                raise FieldError(self.name, "expected a whole number") from None
        return True, raw


def read_fields(fields: tuple[Field, ...], form: Form, creating: bool) -> dict[str, Any]:
    """The entity input a form submits (what the Admin API's body would carry)."""
    data: dict[str, Any] = {}
    for field in fields:
        present, value = field.read(form, creating)
        if present:
            data[field.name] = value
    return data


def form_values(fields: tuple[Field, ...], form: Form) -> dict[str, Any]:
    """What the user typed, to redraw a form that was refused."""
    return {f.name: form.has(f.name) if f.widget == "bool" else form.get(f.name) for f in fields}


def field_messages(body: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """A Kong error body as (per-field messages, summary) for inline display."""
    fields = body.get("fields")
    out: dict[str, str] = {}
    if isinstance(fields, dict):
        for name, message in fields.items():
            out[name] = _flatten(message)
    summary = str(body.get("message", "The change was refused."))
    if body.get("code") == 5 and isinstance(fields, dict):  # unique violation
        out = {name: f"'{value}' is already in use" for name, value in fields.items()}
    return out, summary


def _flatten(message: Any) -> str:
    if isinstance(message, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in message.items())
    if isinstance(message, list):
        return "; ".join(_flatten(v) for v in message)
    return str(message)
