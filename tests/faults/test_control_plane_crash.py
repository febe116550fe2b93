"""kill -9 of the control plane under steady load through two data planes: no proxied request
fails while it is down, and after its restart both nodes resync (a change made after the
restart reaches both, shown in sync by the Admin API, and is served)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.sync_procs import Cluster
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.load import figures
from tests.faults.planes import Planes, elapsed
from tests.faults.walkthrough import chat, walkthrough_load

pytestmark = pytest.mark.e2e

DOWN_S = 3.0
"""How long the control plane stays dead, load flowing."""


def test_kill_9_control_plane_under_load(cluster: Cluster, fake_openai: FakeOpenAI) -> None:
    planes = Planes.start(cluster, fake_openai.url, heartbeat_s=1.0)
    before = planes.cp.expected_hash()

    with walkthrough_load(planes.urls, rate_per_s=40) as load:
        load.wait_requests(40)
        ok_at_kill = load.report.ok
        planes.cp.kill()
        time.sleep(DOWN_S)
        ok_while_down = load.report.ok - ok_at_kill
        lost = [n.status().get("control_plane", "?") for n in planes.nodes]  # None: no CP

        planes.cp.start()
        started_at = time.monotonic()
        planes.cp.wait_ready()
        start_s = time.monotonic() - started_at
        reconnect_s = planes.wait_in_sync()  # both nodes back on their own, config unchanged
        route, after = planes.add_route("after-restart")
        resync_s = elapsed(
            lambda: planes.in_sync(config_hash=after),
            30,
            "both nodes in sync with the change made after the restart",
            planes.cp,
            *planes.nodes,
        )
        load.wait_requests(40)
    report = load.report
    figures(
        "kill -9 control plane",
        report,
        down_s=DOWN_S,
        ok_while_down=ok_while_down,
        cp_start_s=start_s,
        nodes_reconnected_s=reconnect_s,
        resync_after_change_s=resync_s,
    )

    assert report.failed == 0, report.summary()
    assert report.ok >= 40 * (DOWN_S + 2) * 0.6, report.summary()
    assert ok_while_down >= 40 * DOWN_S * 0.6, report.summary()  # served while it was down
    assert lost == [None, None]
    assert after != before
    rows = planes.cp.data_planes()
    for node in planes.nodes:
        assert rows[node.node_id]["sync_status"] == "in_sync"
        assert rows[node.node_id]["config_hash"] == after
        assert node.status()["config_hash"] == after
        assert chat(node.proxy_url, route) == 200
    # Every request that was answered 200 reached the model.
    assert len(fake_openai.requests) >= report.ok
