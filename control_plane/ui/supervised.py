"""`SupervisedNodes`: the UI's `LocalNodes` seam over the control plane's data-plane supervisor
(control_plane.supervisor.Supervisor, the same object `/clustering/local-nodes` serves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Supervising(Protocol):
    """What the UI uses of the supervisor."""

    def as_json(self) -> dict[str, Any]: ...
    async def scale(self, count: int) -> None: ...


class SupervisedNodes:
    """Status and scaling as `GET/PUT /clustering/local-nodes` answer them."""

    def __init__(self, supervisor: Supervising) -> None:
        self._supervisor = supervisor

    async def status(self) -> Mapping[str, Any] | None:
        return self._supervisor.as_json()

    async def scale(self, desired: int) -> Mapping[str, Any]:
        """Raises ValueError (the supervisor's message) for a count it refuses."""
        await self._supervisor.scale(desired)
        return self._supervisor.as_json()
