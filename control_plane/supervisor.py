"""The control plane's supervisor of local data-plane processes (`lockgate up --data-planes N`).

Node `i` (1-based) is one `lockgate data-plane` process with its own status port (base + i - 1),
node id file and snapshot cache in the data dir; every node serves the same proxy port
(SO_REUSEPORT), so the proxy URL never changes while nodes come and go.

- A node that exits without being asked to (a crash, `kill -9`) restarts after a backoff that
  doubles on each quick failure (from `backoff_initial_s` up to `backoff_max_s`) and starts over
  once a node has run `stable_after_s`.
- Scaling down drains the highest-numbered nodes: SIGTERM, and the node finishes its in-flight
  requests and streams before it exits (SIGKILL after `drain_timeout_s`). Drained nodes leave
  the list once their process has exited.
- States: starting (spawned, `/status/ready` not yet 200), running, draining, restarting
  (waiting out the backoff), exited (stopped with the supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

log = logging.getLogger("lockgate.supervisor")

NodeState = Literal["starting", "running", "draining", "restarting", "exited"]
MAX_NODES = 64
_MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


def _reads(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """What the supervisor runs; built from the settings by `supervisor_config.build`."""

    command: Sequence[str]
    """argv of one data plane, e.g. `python -m lockgate data-plane`."""
    env: Mapping[str, str]
    """Environment of every node; the supervisor adds LOCKGATE_NODE_ID, LOCKGATE_STATUS_LISTEN
    and (unless set here) LOCKGATE_DP_SNAPSHOT_CACHE per node."""
    data_dir: Path
    status_host: str
    status_base_port: int
    initial: int = 1
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 10.0
    drain_timeout_s: float = 20.0
    ready_poll_s: float = 0.2
    log_dir: Path | None = None
    """Each node's stdout/stderr go to `data-plane-{i}.log` here; None: the supervisor's own."""


@dataclass(slots=True)
class LocalNode:
    """One supervised data plane (mutable; owned by the supervisor's event loop)."""

    index: int
    node_id: str
    status_port: int
    state: NodeState = "starting"
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None
    stopping: bool = False
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    killer: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "node_id": self.node_id,
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "status_port": self.status_port,
            "started_at": self.started_at,
        }


def node_id(data_dir: Path, index: int, new_id: Callable[[], str]) -> str:
    """Node `index`'s id, kept in `data-plane-{index}.id` so restarts keep their identity."""
    path = data_dir / f"data-plane-{index}.id"
    if path.exists():
        return path.read_text().strip()
    value = new_id()
    path.write_text(value + "\n")
    return value


class Supervisor:
    """Runs and scales local data planes; every method is called on one event loop."""

    def __init__(
        self,
        config: SupervisorConfig,
        *,
        new_id: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self._clock = clock
        self._nodes: dict[int, LocalNode] = {}
        self._desired = 0
        self._closing = False
        self._hinted = False
        self._http: httpx.AsyncClient | None = None

    @property
    def desired(self) -> int:
        return self._desired

    def nodes(self) -> list[LocalNode]:
        """Every node still running or on its way, by index."""
        return [self._nodes[i] for i in sorted(self._nodes)]

    def as_json(self) -> dict[str, Any]:
        """The body of `GET /clustering/local-nodes`."""
        return {"desired": self._desired, "data": [n.as_json() for n in self.nodes()]}

    async def start(self) -> None:
        """Start the configured number of nodes (returns at once; they come up in background)."""
        self._config.data_dir.mkdir(parents=True, exist_ok=True)
        if self._config.log_dir is not None:
            self._config.log_dir.mkdir(parents=True, exist_ok=True)
        self._http = httpx.AsyncClient(timeout=1.0)
        await self.scale(self._config.initial)

    async def scale(self, count: int) -> None:
        """Make `count` nodes the goal: start the missing ones, drain the ones above `count`.
        Returns at once; watch `nodes()` for progress."""
        if not 1 <= count <= MAX_NODES:
            raise ValueError(f"count must be from 1 to {MAX_NODES}, got {count}")
        if self._closing:
            raise RuntimeError("the supervisor is stopping")
        if count > 1 and not self._hinted and _reads(_MIGRATE_REQ) == "0":
            self._hinted = True
            log.warning(
                "net.ipv4.tcp_migrate_req is 0: connections queued on a draining data plane's "
                "listener may be reset; set it to 1 (docs/operations.md)"
            )
        self._desired = count
        for index in range(1, count + 1):
            if index not in self._nodes:
                self._launch(index)
        for index, node in self._nodes.items():
            if index > count:
                self._drain(node)

    async def stop(self) -> None:
        """Drain every node and wait until all have exited."""
        self._closing = True
        for node in self._nodes.values():
            self._drain(node)
        tasks = [n.task for n in self._nodes.values() if n.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def _launch(self, index: int) -> None:
        node = LocalNode(
            index=index,
            node_id=node_id(self._config.data_dir, index, self._new_id),
            status_port=self._config.status_base_port + index - 1,
        )
        self._nodes[index] = node
        node.task = asyncio.create_task(self._lifecycle(node), name=f"data-plane-{index}")

    def _drain(self, node: LocalNode) -> None:
        if node.stopping:
            return
        node.stopping = True
        node.wake.set()  # ends a backoff wait
        if node.process is not None:
            self._terminate(node, node.process)

    def _terminate(self, node: LocalNode, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        node.state = "draining"
        process.send_signal(signal.SIGTERM)
        node.killer = asyncio.create_task(self._kill_after(process))

    def _wanted(self, node: LocalNode) -> bool:
        return not self._closing and node.index <= self._desired

    async def _lifecycle(self, node: LocalNode) -> None:
        delay = self._config.backoff_initial_s
        try:
            while True:
                ran_s = await self._run_once(node)
                if node.stopping:
                    if not self._wanted(node):
                        break
                    # Scaled back up while it drained: start it again at once.
                    node.stopping = False
                    continue
                # Exited on its own: a crash (or a kill from outside). Restart after a backoff.
                delay = (
                    self._config.backoff_initial_s
                    if ran_s >= self._config.stable_after_s
                    else delay
                )
                node.state = "restarting"
                node.wake.clear()
                log.warning(
                    "data plane %d exited unexpectedly; restarting in %.1f s", node.index, delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(node.wake.wait(), timeout=delay)
                if node.stopping:
                    if not self._wanted(node):
                        break
                    node.stopping = False
                node.restarts += 1
                delay = min(delay * 2, self._config.backoff_max_s)
        finally:
            node.state = "exited"
            node.pid = None
            if not self._closing and self._nodes.get(node.index) is node:
                del self._nodes[node.index]

    async def _run_once(self, node: LocalNode) -> float:
        """Run node's process until it exits; returns how long it ran (seconds)."""
        node.state = "starting"
        env = dict(self._config.env)
        env["LOCKGATE_NODE_ID"] = node.node_id
        env["LOCKGATE_STATUS_LISTEN"] = f"{self._config.status_host}:{node.status_port}"
        # Restarts serve the last config at once, even while the control plane is down.
        env.setdefault(
            "LOCKGATE_DP_SNAPSHOT_CACHE",
            str(self._config.data_dir / f"data-plane-{node.index}.snapshot"),
        )
        started = time.monotonic()
        output: Any = None
        if self._config.log_dir is not None:
            output = (self._config.log_dir / f"data-plane-{node.index}.log").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                *self._config.command, env=env, stdout=output, stderr=output
            )
        finally:
            if output is not None:
                output.close()  # the child keeps its own descriptor
        node.process = process
        node.pid = process.pid
        node.started_at = self._clock()
        if node.stopping:  # drained while it was being spawned
            self._terminate(node, process)
        ready = asyncio.create_task(self._watch_ready(node))
        try:
            await process.wait()
        finally:
            ready.cancel()
            if node.killer is not None:
                node.killer.cancel()
                node.killer = None
        node.process = None
        node.pid = None
        log.info(
            "data plane %d (pid %d) exited with %s", node.index, process.pid, process.returncode
        )
        return time.monotonic() - started

    async def _kill_after(self, process: asyncio.subprocess.Process) -> None:
        await asyncio.sleep(self._config.drain_timeout_s)
        if process.returncode is None:
            log.warning("data plane pid %d did not drain in time; killing it", process.pid)
            process.kill()

    async def _watch_ready(self, node: LocalNode) -> None:
        """starting -> running once the node's `/status/ready` answers 200."""
        host = self._config.status_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        url = f"http://{host}:{node.status_port}/status/ready"
        assert self._http is not None
        while node.state == "starting":
            try:
                if (await self._http.get(url)).status_code == 200:
                    if node.state == "starting":
                        node.state = "running"
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(self._config.ready_poll_s)
