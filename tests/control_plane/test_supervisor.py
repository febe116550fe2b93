"""The local data-plane supervisor against real child processes (tests/control_plane/fake_node):
starting, readiness, restart with backoff, scaling up and down, draining, stopping."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from control_plane.supervisor import Supervisor, SupervisorConfig
from tests.control_plane.fake_node import COMMAND
from tests.control_plane.port_block import free_port_block


def _config(tmp_path: Path, **env: str) -> SupervisorConfig:
    return SupervisorConfig(
        command=COMMAND,
        env={**os.environ, "FAKE_NODE_EVENTS": str(tmp_path / "events.jsonl"), **env},
        data_dir=tmp_path / "data",
        status_host="127.0.0.1",
        status_base_port=free_port_block(4),
        initial=1,
        backoff_initial_s=0.2,
        backoff_max_s=0.8,
        stable_after_s=30.0,
        drain_timeout_s=5.0,
        ready_poll_s=0.05,
    )


def events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def states(sup: Supervisor) -> list[tuple[int, str]]:
    return [(n.index, n.state) for n in sup.nodes()]


@pytest.fixture
async def running() -> AsyncIterator[list[Supervisor]]:
    """Supervisors a test started; stopped (and their processes reaped) after it."""
    started: list[Supervisor] = []
    yield started
    for sup in started:
        await sup.stop()


async def start(config: SupervisorConfig, running: list[Supervisor]) -> Supervisor:
    sup = Supervisor(config)
    running.append(sup)
    await sup.start()
    return sup


async def test_nodes_start_with_own_status_port_id_and_cache(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    config = replace(_config(tmp_path), initial=2)
    sup = await start(config, running)
    assert sup.desired == 2
    assert [s for _, s in states(sup)] == ["starting", "starting"]
    await eventually(lambda: states(sup) == [(1, "running"), (2, "running")])

    body = sup.as_json()
    assert body["desired"] == 2
    ports = [n["status_port"] for n in body["data"]]
    assert ports == [config.status_base_port, config.status_base_port + 1]
    started = {e["port"]: e for e in events(tmp_path) if e["kind"] == "start"}
    for node in body["data"]:
        assert node["pid"] == started[node["status_port"]]["pid"]
        assert node["node_id"] == started[node["status_port"]]["node_id"]
        assert node["restarts"] == 0
        assert node["started_at"] == pytest.approx(time.time(), abs=30)
        # The id is kept on disk, so a restarted control plane gives the node the same id.
        id_file = config.data_dir / f"data-plane-{node['index']}.id"
        assert id_file.read_text().strip() == node["node_id"]
        cache = config.data_dir / f"data-plane-{node['index']}.snapshot"
        assert started[node["status_port"]]["cache"] == str(cache)

    await sup.stop()
    assert states(sup) == [(1, "exited"), (2, "exited")]
    assert sorted(e["pid"] for e in events(tmp_path) if e["kind"] == "exit") == sorted(
        n["pid"] for n in body["data"]
    )

    again = await start(config, running)
    await eventually(lambda: states(again) == [(1, "running"), (2, "running")])
    assert [n.node_id for n in again.nodes()] == [n["node_id"] for n in body["data"]]


async def test_a_crashing_node_restarts_with_growing_backoff(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    spawned: list[float] = []  # monotonic time of each spawn, as the supervisor makes it

    def clock() -> float:
        spawned.append(time.monotonic())
        return time.time()

    sup = Supervisor(_config(tmp_path, FAKE_NODE_CRASH="1"), clock=clock)
    running.append(sup)
    await sup.start()
    await eventually(lambda: len(spawned) >= 5)
    await eventually(lambda: len([e for e in events(tmp_path) if e["kind"] == "start"]) >= 4)
    assert sup.nodes()[0].state in ("restarting", "starting")
    # The fake node exits right after recording `start`: from there to the next spawn is the
    # backoff, 0.2, 0.4, 0.8, then capped at 0.8 (plus the supervisor noticing the exit).
    crashed = [e["at"] for e in events(tmp_path) if e["kind"] == "start"][:4]
    waits = [spawn - crash for crash, spawn in zip(crashed, spawned[1:5], strict=True)]
    for waited, backoff in zip(waits, (0.2, 0.4, 0.8, 0.8), strict=True):
        assert backoff <= waited < backoff + 0.4, waits
    assert sup.nodes()[0].restarts >= 4


async def test_a_killed_node_restarts_and_runs_again(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    sup = await start(_config(tmp_path), running)
    await eventually(lambda: states(sup) == [(1, "running")])
    first = sup.nodes()[0].pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await eventually(lambda: sup.nodes()[0].state == "restarting")
    await eventually(lambda: states(sup) == [(1, "running")] and sup.nodes()[0].pid != first)
    node = sup.nodes()[0].as_json()
    assert node["restarts"] == 1
    assert [e["pid"] for e in events(tmp_path) if e["kind"] == "start"] == [first, node["pid"]]


async def test_scale_up_then_down_drains_the_highest_nodes(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    sup = await start(_config(tmp_path, FAKE_NODE_DRAIN_S="0.5"), running)
    await eventually(lambda: states(sup) == [(1, "running")])
    first = sup.nodes()[0].pid

    await sup.scale(3)
    assert sup.desired == 3
    await eventually(lambda: states(sup) == [(1, "running"), (2, "running"), (3, "running")])
    pids = {n.index: n.pid for n in sup.nodes()}
    assert pids[1] == first

    await sup.scale(1)
    assert sup.desired == 1
    assert states(sup) == [(1, "running"), (2, "draining"), (3, "draining")]
    await eventually(lambda: states(sup) == [(1, "running")])
    exits = {e["pid"] for e in events(tmp_path) if e["kind"] == "exit"}
    terms = {e["pid"] for e in events(tmp_path) if e["kind"] == "term"}
    assert exits == terms == {pids[2], pids[3]}
    assert sup.nodes()[0].pid == first  # the node that stays was never touched


async def test_drain_waits_for_the_node_to_finish(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    sup = await start(replace(_config(tmp_path, FAKE_NODE_DRAIN_S="1.0"), initial=2), running)
    await eventually(lambda: [s for _, s in states(sup)] == ["running", "running"])
    await sup.scale(1)
    began = time.monotonic()
    await asyncio.sleep(0.7)
    assert states(sup) == [(1, "running"), (2, "draining")]  # still finishing its work
    await eventually(lambda: states(sup) == [(1, "running")])
    assert time.monotonic() - began >= 1.0
    term, exit_ = (e for e in events(tmp_path) if e["kind"] in ("term", "exit"))
    assert exit_["at"] - term["at"] >= 1.0


async def test_a_node_that_ignores_sigterm_is_killed_after_the_drain_timeout(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    config = replace(_config(tmp_path, FAKE_NODE_IGNORE_TERM="1"), initial=2, drain_timeout_s=0.5)
    sup = await start(config, running)
    await eventually(lambda: [s for _, s in states(sup)] == ["running", "running"])
    victim = sup.nodes()[1].pid
    await sup.scale(1)
    await eventually(lambda: states(sup) == [(1, "running")], timeout_s=5)
    kinds = [e["kind"] for e in events(tmp_path) if e["pid"] == victim]
    assert kinds == ["start", "term"]  # never got to exit cleanly: it was killed


async def test_scaling_back_up_while_draining_restarts_the_node(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    sup = await start(replace(_config(tmp_path, FAKE_NODE_DRAIN_S="0.5"), initial=2), running)
    await eventually(lambda: [s for _, s in states(sup)] == ["running", "running"])
    old = sup.nodes()[1].pid
    await sup.scale(1)
    await sup.scale(2)
    assert states(sup) == [(1, "running"), (2, "draining")]
    await eventually(lambda: states(sup) == [(1, "running"), (2, "running")])
    assert sup.nodes()[1].pid != old
    assert sup.nodes()[1].restarts == 0  # asked for, not a crash


async def test_count_is_checked(tmp_path: Path, running: list[Supervisor]) -> None:
    sup = await start(_config(tmp_path), running)
    for bad in (0, 65, -1):
        with pytest.raises(ValueError, match="from 1 to 64"):
            await sup.scale(bad)
    assert sup.desired == 1
