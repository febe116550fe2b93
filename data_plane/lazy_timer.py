"""A deadline that is cheap to move: the event loop's timer is only touched when the deadline
comes earlier than the pending timer, or when that timer fires.

Why: a connection re-arms its deadline several times per request (keep-alive, head, the
upstream's answer), almost always further into the future and almost always cleared before it
is due. `loop.call_later` + `cancel` costs about 2 µs a pair on uvloop; moving a float costs
nothing. A timer that fires before the (moved) deadline schedules itself again for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

_SLACK_S = 0.001
"""A timer firing this close to the deadline counts as on time (uvloop's timers have
millisecond resolution)."""


class LazyTimer:
    """Calls `callback` once the armed deadline has passed, unless disarmed before."""

    __slots__ = ("_at", "_callback", "_handle", "_handle_at", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._callback = callback
        self._at = 0.0
        """The deadline (loop time); 0: none."""
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at = 0.0

    @property
    def armed(self) -> bool:
        return self._at != 0.0

    def arm(self, seconds: float) -> None:
        """Set the deadline `seconds` from now (replacing any earlier one)."""
        at = self._loop.time() + seconds
        self._at = at
        handle = self._handle
        if handle is None or self._handle_at > at:
            if handle is not None:
                handle.cancel()
            self._handle_at = at
            self._handle = self._loop.call_at(at, self._fire)

    def disarm(self) -> None:
        """No deadline; a pending timer fires later and finds nothing to do."""
        self._at = 0.0

    def cancel(self) -> None:
        """No deadline, and no pending timer (the owner is done: nothing keeps it alive)."""
        self._at = 0.0
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        at = self._at
        if not at:
            return
        if self._loop.time() < at - _SLACK_S:
            self._handle_at = at
            self._handle = self._loop.call_at(at, self._fire)
            return
        self._at = 0.0
        self._callback()
