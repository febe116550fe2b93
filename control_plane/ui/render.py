"""Jinja2 rendering of the UI's pages (autoescaped; templates in web/templates)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from lockgate import __version__


def when(value: Any) -> str:
    """Epoch seconds as `2025-01-31 13:45:00 UTC`; "-" for none."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _json_script(value: Any) -> Markup:
    """JSON safe to embed in `<script type="application/json">` (no `</script>` breakout)."""
    text = json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))  # noqa: S704 (escaped above)


class Pages:
    """Renders a template with what every page shares (the user, nav, CSRF token)."""

    def __init__(self, templates: Path) -> None:
        self._env = Environment(
            loader=FileSystemLoader(templates),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["when"] = when
        self._env.filters["json_script"] = _json_script
        self._env.globals["version"] = __version__

    def render(self, template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
        html = self._env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status)
