"""How a data plane joins and leaves the proxy port it shares with other local nodes.

Several local data planes share the proxy port (SO_REUSEPORT): the kernel hands each new
connection to one of the listening processes. So a node must not listen before it can serve:
a node without a config would answer 503 to its share of the connections while its siblings
serve them fine (`wait_configured`: listen once a config is applied, from the control plane or
the snapshot cache).

When a node stops, three things can fail a client's request although other nodes are up:

- connections still in the stopping node's accept queue are reset when its listener closes,
  unless the kernel hands them to another listener of the port (`net.ipv4.tcp_migrate_req=1`,
  Linux 5.14+; without it, the loss is limited to connections that arrive in the microseconds
  between the node's last accept and the close);
- a graceful shutdown closes every connection without a request running, including one just
  accepted whose request is not read yet;
- a pooled keep-alive connection closed by the node just as the client sends on it.

So `drain` closes the listener first, then answers every request with `Connection: close` for
a short window (until no connection is left): each keep-alive client's next request on the node
is still served, and its next connection goes to a remaining node. Only then does the server's
graceful shutdown close what is idle and wait for the requests and streams in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

_POLL_S = 0.05


class Drainable(Protocol):
    """What `drain` needs of the proxy port's server (data_plane.http_server.HttpServer)."""

    @property
    def connections(self) -> Collection[Any]:
        """The client connections open now."""
        ...

    def stop_accepting(self) -> None:
        """Close the listeners; every open connection answers its next request with
        `Connection: close` and then closes."""
        ...


async def drain(server: Drainable, window_s: float) -> None:
    """Leave the shared port, then give clients up to `window_s` seconds (less when no
    connection is left) to move to the other nodes. The caller then shuts the server down,
    which waits for the requests and streams still in flight."""
    server.stop_accepting()
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        if not server.connections:
            return
        await asyncio.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))


async def wait_configured(configured: Callable[[], bool], stop: asyncio.Event) -> bool:
    """Wait until `configured()` (True) or `stop` is set (False)."""
    while not configured():
        if stop.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=_POLL_S)
    return True
