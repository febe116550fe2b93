"""kill -9 of a supervised data plane (`lockgate up --data-planes 2`, one shared proxy port) under
steady load: clients whose connection dies retry as the OpenAI SDK does (after 0.5 s, then 1 s)
and reach the other node, so no request fails; the supervisor restarts the killed node (new pid,
same node id), which resyncs. (An immediate reconnect could land in the dying node's accept
queue and be reset: tests/faults/load.py.)"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control_plane.port_block import free_port_block
from tests.e2e.test_scale import proxy_connections
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.load import figures
from tests.faults.planes import elapsed
from tests.faults.supervised import LockgateUp, Supervised
from tests.faults.walkthrough import chat, deck_sync, walkthrough_load

pytestmark = pytest.mark.e2e

RATE = 40.0
WORKERS = 6
STALLED = WORKERS // 2 + 1


@pytest.fixture
def supervised(tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[Supervised]:
    lg = LockgateUp(tmp_path / "data", tmp_path / "lockgate.log", data_planes=2)
    # Below the ephemeral range (see tests/e2e/test_scale.py): proxy, then a status port a node.
    base = free_port_block(3)
    lg.proxy_port, lg.status_port = base, base + 1
    lg.start()
    up = Supervised(lg)
    try:
        deck_sync(lg.env(), tmp_path, fake_openai.url)
        elapsed(up.all_running_in_sync, 30, "both local nodes in sync", lg)
        yield up
    finally:
        code = lg.stop()
        print(lg.log())
        assert code == 0


def test_kill_9_data_plane_under_load(supervised: Supervised, fake_openai: FakeOpenAI) -> None:
    up, lg = supervised, supervised.lockgate
    before = {n["index"]: n for n in up.local_nodes()}
    assert sorted(before) == [1, 2]

    with walkthrough_load([lg.proxy_url], rate_per_s=RATE, workers=WORKERS) as load:
        load.wait_requests(40)
        # Requests in flight when the node dies: the model holds the next STALLED ones. Each
        # worker keeps one connection and waits for its answer, so they come from STALLED
        # workers; the victim holds most of the WORKERS connections, so at least one of them.
        received = len(fake_openai.requests)
        for _ in range(STALLED):
            fake_openai.queue_stall(2.0)
        elapsed(lambda: len(fake_openai.requests) >= received + STALLED, 10, "stalled", lg)
        time.sleep(0.3)  # every worker sent once more meanwhile: all STALLED are held (2 s)
        victim = max(before.values(), key=lambda n: proxy_connections(n["pid"], lg.proxy_port))
        assert proxy_connections(victim["pid"], lg.proxy_port) >= WORKERS // 2
        ok_at_kill = load.report.ok
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted() -> bool:
            nodes = {n["index"]: n for n in up.local_nodes()}
            node = nodes.get(victim["index"])
            return node is not None and node["restarts"] == 1 and node["state"] == "running"

        restart_s = elapsed(restarted, 30, "the supervisor to restart the node", lg)
        resync_s = elapsed(up.all_running_in_sync, 30, "the restarted node in sync", lg) + restart_s
        served_meanwhile = load.report.ok - ok_at_kill
        load.wait_requests(40)
    report = load.report
    figures(
        "kill -9 data plane",
        report,
        restart_s=restart_s,
        in_sync_s=resync_s,
        ok_until_resync=served_meanwhile,
    )

    assert report.failed == 0, report.summary()
    assert report.retried >= 1, report.summary()  # cut off on the victim, answered by the other
    assert served_meanwhile >= RATE * restart_s * 0.5, report.summary()
    after = {n["index"]: n for n in up.local_nodes()}
    node = after[victim["index"]]
    assert node["pid"] != victim["pid"]
    assert node["node_id"] == victim["node_id"]  # the same node, back in sync
    assert up.data_planes()[node["node_id"]]["sync_status"] == "in_sync"
    other = 3 - victim["index"]
    assert (after[other]["pid"], after[other]["restarts"]) == (before[other]["pid"], 0)
    with pytest.raises(ProcessLookupError):
        os.kill(victim["pid"], 0)
    assert chat(lg.proxy_url) == 200
    assert len(fake_openai.requests) >= report.ok
