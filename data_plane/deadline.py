"""Waiting for a future with a deadline: a timer that fails the future, cheaper per call than
`asyncio.timeout` (no task cancellation bookkeeping), which matters on the proxy's hot path."""

from __future__ import annotations

import asyncio


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


async def wait(
    loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None], timeout_s: float
) -> None:
    """Await `fut`; raises TimeoutError if it is not done within `timeout_s` seconds."""
    handle = loop.call_later(timeout_s, _expire, fut)
    try:
        await fut
    finally:
        handle.cancel()
