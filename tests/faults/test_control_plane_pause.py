"""A control plane frozen (SIGSTOP) past the heartbeat timeout, under steady load through two
data planes, with two control planes on one PostgreSQL database (the HA topology).

While A is frozen its TCP connections stay open, so only missed keepalive pings tell the nodes
it is gone: they give it up within 3 heartbeat intervals (their /status shows they left A) and
fail over to B, whose changes keep reaching them. Once A resumes, its Admin API shows both nodes
`disconnected` and it has caught up with the writes made on B meanwhile; when B goes away the
nodes come back to A and resync. No proxied request fails at any point."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sync_procs import Cluster, cluster_at
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.load import figures
from tests.faults.planes import Planes, elapsed
from tests.faults.walkthrough import CONSUMER_KEY, walkthrough_load

pytestmark = pytest.mark.e2e

HEARTBEAT_S = 1.0
TIMEOUT_S = 3 * HEARTBEAT_S
"""The heartbeat timeout: 3 missed intervals (control_plane/nodes.py, MISSED_HEARTBEATS)."""


@pytest.fixture
def shared_db_cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    with cluster_at(tmp_path, postgres_url) as procs:
        yield procs


def test_sigstop_control_plane_past_the_heartbeat_timeout(
    shared_db_cluster: Cluster, fake_openai: FakeOpenAI
) -> None:
    planes = Planes.start(
        shared_db_cluster, fake_openai.url, heartbeat_s=HEARTBEAT_S, control_planes=2
    )
    a, b = planes.cps
    assert [n.status()["control_plane"] for n in planes.nodes] == [a.cluster_address] * 2

    with walkthrough_load(planes.urls, rate_per_s=40) as load:
        load.wait_requests(40)
        ok_at_pause = load.report.ok
        a.signal(signal.SIGSTOP)
        paused_at = time.monotonic()
        paused_wall = time.time()
        try:
            failover_s = elapsed(
                lambda: all(
                    n.status().get("control_plane") == b.cluster_address for n in planes.nodes
                ),
                5 * TIMEOUT_S,
                "both nodes to give up the frozen control plane for the other",
                b,
                *planes.nodes,
            )
            # Changes keep flowing, through B, while A is frozen.
            route, changed = planes.add_route("while-frozen", cp=b)
            elapsed(lambda: planes.in_sync(b, changed), 20, "the change via B", b, *planes.nodes)
            assert planes.chat_statuses(CONSUMER_KEY, route) == [200, 200]
            time.sleep(max(0.0, TIMEOUT_S + HEARTBEAT_S - (time.monotonic() - paused_at)))
            paused_s = time.monotonic() - paused_at
            ok_while_paused = load.report.ok - ok_at_pause
        finally:
            a.signal(signal.SIGCONT)

        # A, resumed: the nodes it had are shown disconnected (they are on B now), and it has
        # caught up with the write made on B while it was frozen.
        shown_s = elapsed(
            lambda: {r["sync_status"] for r in a.data_planes().values()} == {"disconnected"},
            10,
            "the resumed control plane to show both nodes disconnected",
            a,
        )
        rows = a.data_planes()
        assert sorted(rows) == ["dp0", "dp1"]
        elapsed(lambda: a.expected_hash() == changed, 10, "A to catch up with B's write", a)

        # B goes away: the nodes come back to A and resync with it.
        b.stop()
        back_s = elapsed(
            lambda: (
                planes.in_sync(a, changed)
                and all(n.status().get("control_plane") == a.cluster_address for n in planes.nodes)
            ),
            30,
            "both nodes back on A, in sync",
            a,
            *planes.nodes,
        )
        route_after, after = planes.add_route("after-resume", cp=a)
        resync_s = elapsed(lambda: planes.in_sync(a, after), 20, "the change via A", a)
        load.wait_requests(40)
    report = load.report
    figures(
        "SIGSTOP control plane",
        report,
        paused_s=paused_s,
        ok_while_paused=ok_while_paused,
        nodes_left_frozen_cp_s=failover_s,
        shown_disconnected_after_resume_s=shown_s,
        back_on_resumed_cp_s=back_s,
        resync_after_change_s=resync_s,
    )

    assert report.failed == 0, report.summary()
    assert ok_while_paused >= 40 * paused_s * 0.6, report.summary()
    # Given up within the heartbeat timeout (3 intervals), with slack for a loaded machine.
    assert failover_s < TIMEOUT_S + 3 * HEARTBEAT_S, failover_s
    rows = a.data_planes()
    assert {r["sync_status"] for r in rows.values()} == {"in_sync"}
    assert {r["config_hash"] for r in rows.values()} == {after}
    assert all(r["connected_at"] >= int(paused_wall) for r in rows.values())  # new streams
    assert planes.chat_statuses(CONSUMER_KEY, route_after) == [200, 200]
    assert planes.chat_statuses(CONSUMER_KEY, route) == [200, 200]
