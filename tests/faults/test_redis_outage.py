"""Redis stopped under steady load through two data planes.

A control plane and two data planes (real processes) share a real `redis-server` as the
key-auth credential cache (LOCKGATE_REDIS_URL) and serve the walkthrough's pipeline
(pre-function -> key-auth -> ai-proxy-advanced to a fake OpenAI). The load rotates over many
consumers' keys through both data planes. Redis is killed (SIGKILL: an outage, not a shutdown),
stays down while keys are created, and comes back empty. Throughout: not one 5xx, not one failed
request for a valid key; keys created while Redis was down work on both data planes at once;
wrong keys still get 401.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.sync_procs import Cluster
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.planes import Planes
from tests.faults.walkthrough import KeyRing, walkthrough_load

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest can rewrite its asserts
    from tests.services.redis import RedisServer

pytestmark = pytest.mark.e2e

LOAD_RATE = 40.0
KEYS_BEFORE = 20
KEYS_COLD = 5
KEYS_DURING = 5
DOWN_S = 6.0
"""How long Redis stays down (the new keys are created in the first part of it)."""


def test_redis_outage_under_load_no_5xx_for_valid_keys(
    cluster: Cluster, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    planes = Planes.start(cluster, fake_openai.url, redis_url=redis_server.url)
    keys = [f"before-{n}-secret" for n in range(KEYS_BEFORE)]
    cold = [f"cold-{n}-secret" for n in range(KEYS_COLD)]  # in Redis, in no data plane's L1
    for n, key in enumerate(keys):
        planes.add_consumer(f"before-{n}", key)
    for n, key in enumerate(cold):
        planes.add_consumer(f"cold-{n}", key)
    deadline = time.monotonic() + 10
    while redis_server.dbsize() < KEYS_BEFORE + KEYS_COLD:  # written through by the CP
        assert time.monotonic() < deadline, "the control plane did not write keys to Redis"
        time.sleep(0.05)
    ring = KeyRing(keys)
    load = walkthrough_load(planes.urls, rate_per_s=LOAD_RATE, headers_for=ring.headers_for)
    load_started = time.monotonic()
    with load:
        load.wait_requests(2 * KEYS_BEFORE)
        before = load.report.sent
        started = time.monotonic()
        down_at = started - load_started
        redis_server.stop()
        try:
            for key in cold:  # first looked up by the load, with Redis down
                ring.add(key)
            for n in range(KEYS_DURING):
                key = f"during-{n}-secret"
                planes.add_consumer(f"during-{n}", key)  # never in Redis nor in any L1
                ring.add(key)
            load.wait_requests(2 * (KEYS_BEFORE + KEYS_COLD + KEYS_DURING))
            for n in range(KEYS_DURING):
                assert planes.chat_statuses(f"during-{n}-secret") == [200, 200]
            assert planes.chat_statuses("wrong-secret") == [401, 401]
            time.sleep(max(0.0, DOWN_S - (time.monotonic() - started)))
        finally:
            redis_server.start()
        during = load.report.sent - before
        down_s = time.monotonic() - started
        # Back, empty: new keys are written through again and old ones keep working.
        planes.add_consumer("after", "after-secret")
        ring.add("after-secret")
        assert planes.chat_statuses("after-secret") == [200, 200]
        load.wait_requests(2 * len(ring))
    report = load.report
    print(
        f"\nload: {report.summary()}\nRedis down {down_s:.1f} s from {down_at:.1f} s; "
        f"{during} requests sent while it was down; {KEYS_COLD} keys first used and "
        f"{KEYS_DURING} keys created while down"
    )
    assert report.failed == 0, report.summary()
    assert set(report.statuses) == {"200"}, report.statuses
    assert during >= LOAD_RATE * DOWN_S * 0.5, "the load did not run through the outage"
    deadline = time.monotonic() + 10
    while redis_server.dbsize() < 1:  # "after" was written through once Redis was back
        assert time.monotonic() < deadline, "nothing written to Redis after it came back"
        time.sleep(0.05)
