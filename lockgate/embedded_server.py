"""uvicorn servers run side by side in one event loop, whose owner handles SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process's entry point (uvicorn's own
    handlers would be replaced by each of several servers in turn)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def embedded(
    app: Any, *, sockets: list[socket.socket] | None = None, **options: Any
) -> EmbeddedServer:
    options.setdefault("access_log", False)
    options.setdefault("log_level", "warning")
    return EmbeddedServer(uvicorn.Config(app, **options))
