"""data_plane/shared_port.py on its own: how a node leaves and joins the shared proxy port.
(Its effect, zero failed requests while scaling, is tests/e2e/test_scale.py.)"""

from __future__ import annotations

import asyncio
import time

from data_plane.shared_port import drain, wait_configured


class FakeServer:
    def __init__(self, connections: int) -> None:
        self.connections: set[int] = set(range(connections))
        self.accepting = True

    def stop_accepting(self) -> None:
        self.accepting = False


async def test_drain_stops_accepting_and_returns_once_connections_are_gone() -> None:
    server = FakeServer(2)

    async def clients_leave() -> None:
        await asyncio.sleep(0.2)
        server.connections.clear()

    leaving = asyncio.create_task(clients_leave())
    began = time.monotonic()
    await drain(server, window_s=5.0)
    took = time.monotonic() - began
    await leaving
    assert not server.accepting
    assert 0.2 <= took < 1.0  # not the whole window


async def test_drain_gives_up_after_the_window() -> None:
    server = FakeServer(1)
    began = time.monotonic()
    await drain(server, window_s=0.3)
    assert 0.3 <= time.monotonic() - began < 1.0
    assert not server.accepting
    assert server.connections == {0}  # what is left is the graceful shutdown's business


async def test_drain_without_connections_or_window_is_immediate() -> None:
    for server, window in ((FakeServer(0), 5.0), (FakeServer(3), 0.0)):
        began = time.monotonic()
        await drain(server, window_s=window)
        assert time.monotonic() - began < 0.1
        assert not server.accepting


async def test_wait_configured() -> None:
    stop = asyncio.Event()
    config: list[str] = []
    waiting = asyncio.create_task(wait_configured(lambda: bool(config), stop))
    await asyncio.sleep(0.15)
    assert not waiting.done()
    config.append("snapshot")
    assert await asyncio.wait_for(waiting, 1.0) is True

    waiting = asyncio.create_task(wait_configured(lambda: False, stop))
    await asyncio.sleep(0.1)
    stop.set()
    assert await asyncio.wait_for(waiting, 1.0) is False
