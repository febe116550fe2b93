"""The web UI (port 8002). For now an overview page of the cluster; entity management and login
come with the UI issue."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, select_autoescape

from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from lockgate import __version__

_PAGE = Environment(autoescape=select_autoescape(default=True)).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lockgate</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2937}
table{border-collapse:collapse}
td,th{padding:.3rem .8rem;border-bottom:1px solid #e5e7eb;text-align:left}
.in_sync{color:#047857}.out_of_sync,.incompatible{color:#b45309}.disconnected{color:#6b7280}</style>
</head><body>
<h1>Lockgate control plane</h1>
<p>Version {{ version }} &middot; config version {{ config_version }}
&middot; hash <code>{{ config_hash[:12] }}</code></p>
<h2>Data plane nodes</h2>
{% if nodes %}<table><tr><th>Hostname</th><th>Node id</th><th>IP</th><th>Status</th>
<th>Config</th><th>Last error</th></tr>
{% for n in nodes %}<tr><td>{{ n.hostname }}</td><td><code>{{ n.id }}</code></td><td>{{ n.ip }}</td>
<td class="{{ n.sync_status }}">{{ n.sync_status }}</td><td>{{ n.config_version }}</td>
<td>{{ n.last_error or "" }}</td></tr>{% endfor %}</table>
{% else %}<p>No data plane has connected yet.</p>{% endif %}
</body></html>"""
)


def create_ui_app(nodes: NodeRegistry, publisher: Publisher) -> FastAPI:
    app = FastAPI(title="Lockgate UI", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def overview() -> str:
        snap = publisher.current
        return _PAGE.render(
            version=__version__,
            config_version=snap.version if snap else 0,
            config_hash=snap.hash if snap else "",
            nodes=nodes.list(),
        )

    return app
