"""The data plane's status port (8100): `/status`, `/status/ready` (503 until configured) and
`/metrics` (Prometheus text, see data_plane.metrics)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from data_plane.proxy import Receive, Scope, Send
from gateway.prometheus_text import CONTENT_TYPE


class StatusApp:
    def __init__(
        self,
        describe: Callable[[], dict[str, Any]],
        ready: Callable[[], bool],
        metrics: Callable[[], str] | None = None,
    ) -> None:
        """`metrics` renders the Prometheus text for `/metrics` (None: 404 there)."""
        self._describe = describe
        self._ready = ready
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics" and self._metrics is not None:
            await _send(send, 200, CONTENT_TYPE.encode(), self._metrics().encode())
            return
        if path == "/status":
            status, body = 200, self._describe()
        elif path == "/status/ready":
            ready = self._ready()
            status = 200 if ready else 503
            body = {"ready": ready} if ready else {"message": "no configuration applied yet"}
        else:
            status, body = 404, {"message": "Not found"}
        await _send(send, status, b"application/json", json.dumps(body).encode())


async def _send(send: Send, status: int, content_type: bytes, data: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
