"""`kong.router` and `kong.service.set_target`: the matched route and service, and the upstream.

`get_route()`/`get_service()` return the entities as tables in their Admin API shape (Kong hands
out the cached DAO rows: nulls left out, foreign keys as `{ id = ... }`), or nil before routing
(rewrite) and on requests no route matched. Each call builds a fresh table, so a chunk changing
it changes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from gateway.lua.binding import REWRITE_ACCESS, Binding, PdkError, int_arg, text_arg
from gateway.lua.convert import Converter


class RouterApi:
    """Python halves of `kong.router.*` and `kong.service.set_target` for one sandbox."""

    __slots__ = ("_b", "_conv")

    def __init__(self, binding: Binding, converter: Converter) -> None:
        self._b = binding
        self._conv = converter

    def exports(self) -> dict[bytes, Callable[..., Any]]:
        return {
            b"kong.router.get_route": self.get_route,
            b"kong.router.get_service": self.get_service,
            b"kong.service.set_target": self.set_target,
        }

    def get_route(self) -> Any:
        return self._entity(self._b.ctx.route)

    def get_service(self) -> Any:
        return self._entity(self._b.ctx.service)

    def set_target(self, host: object = None, port: object = None) -> None:
        """Send this request to `host:port` instead of the service's host and port."""
        self._b.check_phase(REWRITE_ACCESS)
        name = text_arg(host, "host")
        if not name or any(c in name for c in "/\r\n @"):
            raise PdkError(f"invalid host: {name}")
        upstream = self._b.ctx.upstream
        upstream.host = name
        upstream.port = int_arg(port, "port", 0, 65535)

    def _entity(self, entity: BaseModel | None) -> Any:
        if entity is None:
            return None
        return self._conv.to_lua(entity.model_dump(mode="json", exclude_none=True))
