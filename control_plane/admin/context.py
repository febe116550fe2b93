"""What every Admin API endpoint shares: the store, run off the event loop, and change
notification after each committed write."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from control_plane.admin.caller import current_caller
from control_plane.store.events import ChangeEvent
from control_plane.store.protocol import Reader, Store, Writer
from gateway.plugins.base import Plugin

T = TypeVar("T")

log = logging.getLogger("lockgate.cp.admin")


@dataclass(frozen=True, slots=True)
class AdminContext:
    store: Store
    on_change: Callable[[ChangeEvent], None]
    plugins: Callable[[], Mapping[str, Plugin[Any]]]
    """The plugin types writes are validated against (looked up per request)."""

    async def read(self, fn: Callable[[Reader], T]) -> T:
        return await run_in_threadpool(self.store.read, fn)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store method (admin tokens, audit log) off the event loop."""
        return await run_in_threadpool(partial(fn, *args, **kwargs))

    async def write(self, fn: Callable[[Writer], T]) -> T:
        """Run `fn` in one write transaction; after it commits, call `on_change` (on the event
        loop thread) with what it changed. A failing listener does not undo the write.

        The audit log attributes the write to the current request's caller (token name and
        request id); outside a request it is "system"."""
        caller = current_caller()
        actor = caller.name if caller is not None else "system"
        request_id = caller.request_id if caller is not None else None
        write = partial(self.store.write, fn, actor=actor, request_id=request_id)
        result, event = await run_in_threadpool(write)
        if event is not None:
            try:
                self.on_change(event)
            except Exception:
                log.exception("on_change listener failed for revision %d", event.revision)
        return result
