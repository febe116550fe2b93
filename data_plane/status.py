"""The data plane's status port (8100): `/status` and `/status/ready` (503 until configured)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from data_plane.proxy import Receive, Scope, Send


class StatusApp:
    def __init__(self, describe: Callable[[], dict[str, Any]], ready: Callable[[], bool]) -> None:
        self._describe = describe
        self._ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/status":
            status, body = 200, self._describe()
        elif path == "/status/ready":
            ready = self._ready()
            status = 200 if ready else 503
            body = {"ready": ready} if ready else {"message": "no configuration applied yet"}
        else:
            status, body = 404, {"message": "Not found"}
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
