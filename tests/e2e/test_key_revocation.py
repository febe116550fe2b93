"""Key revocation and credential-backend outages across two real data planes.

A control plane and two data planes run as separate processes (`python -m lockgate
control-plane` / `data-plane`), with and without Redis. Deleting a key, rotating it, or deleting
its consumer must make *both* data planes reject the old key within 1 s, even though each had
the key cached. Outages: Redis stopped mid-run, the control plane stopped, both stopped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from data_plane.credentials import BYPASS_S
from gateway.credentials import hash_key
from gateway.redis_credential_records import DEFAULT_PREFIX, TOMBSTONE
from tests.e2e.lockgate_proc import ADMIN_TOKEN, free_port
from tests.e2e.sync_procs import Proc
from tests.e2e.sync_procs import upstream as answering_upstream

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest can rewrite its asserts
    from tests.services.redis import RedisServer

pytestmark = pytest.mark.e2e

REVOCATION_DEADLINE_S = 1.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with answering_upstream() as url:
        yield url


@dataclass
class Cluster:
    """One control plane and two data planes on free loopback ports."""

    data_dir: Path
    redis: RedisServer | None
    admin_port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    proxy_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    status_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    processes: list[Proc] = field(default_factory=list)
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.admin = httpx.Client(
            base_url=f"http://127.0.0.1:{self.admin_port}",
            headers={"Kong-Admin-Token": ADMIN_TOKEN},
            timeout=5,
        )

    def proxies(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.proxy_ports]

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
        env.update(
            LOCKGATE_DATA_DIR=str(self.data_dir),
            LOCKGATE_ADMIN_TOKEN=ADMIN_TOKEN,
            LOCKGATE_LOG_LEVEL="INFO",
            **extra,
        )
        if self.redis is not None:
            env["LOCKGATE_REDIS_URL"] = self.redis.url
        return env

    def start(self) -> None:
        self.processes.append(
            Proc(
                "control plane",
                [sys.executable, "-m", "lockgate", "control-plane"],
                self._env(
                    LOCKGATE_ADMIN_LISTEN=f"127.0.0.1:{self.admin_port}",
                    LOCKGATE_UI_LISTEN=f"127.0.0.1:{free_port()}",
                    LOCKGATE_CLUSTER_LISTEN=f"127.0.0.1:{self.cluster_port}",
                ),
                self.data_dir / "cp.log",
            )
        )
        self.processes[0].start()
        self.wait(lambda: self.admin.get("/status").status_code == 200, "the Admin API")
        for i in range(2):
            dp = Proc(
                f"data plane {i + 1}",
                [sys.executable, "-m", "lockgate", "data-plane"],
                self._env(
                    LOCKGATE_CONTROL_PLANE=f"127.0.0.1:{self.cluster_port}",
                    LOCKGATE_PROXY_LISTEN=f"127.0.0.1:{self.proxy_ports[i]}",
                    LOCKGATE_STATUS_LISTEN=f"127.0.0.1:{self.status_ports[i]}",
                ),
                self.data_dir / f"dp{i + 1}.log",
            )
            self.processes.append(dp)
            dp.start()
        self.wait_in_sync()

    def wait_in_sync(self) -> None:
        """Until both data planes run the control plane's current config."""

        def synced() -> bool:
            expected = self.admin.get("/clustering/expected-config-hash").json()["expected_hash"]
            hashes = [
                httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).json()["config_hash"]
                for port in self.status_ports
            ]
            return bool(expected) and all(h == expected for h in hashes)

        self.wait(synced, "both data planes in sync")

    def wait(self, check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for process in self.processes:
                assert process.proc is not None
                if process.proc.poll() is not None and process.proc.returncode != 0:
                    raise AssertionError(f"{process.name} exited:\n{self.logs()}")
            try:
                if check():
                    return
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} ({last})\n{self.logs()}")

    def stop_control_plane(self) -> None:
        self.processes[0].stop()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.admin.close()

    def logs(self) -> str:
        return "\n".join(p.log() for p in self.processes)


def start_cluster(tmp: Path, upstream: str, redis: RedisServer | None) -> Cluster:
    cluster = Cluster(tmp, redis)
    try:
        cluster.start()
        admin = cluster.admin
        assert admin.post("/services", json={"name": "svc", "url": upstream}).status_code == 201
        route = admin.post("/services/svc/routes", json={"name": "r", "paths": ["/r"]})
        assert route.status_code == 201, route.text
        plugin = admin.post("/routes/r/plugins", json={"name": "key-auth"})
        assert plugin.status_code == 201, plugin.text
        # the route and key-auth are live on both data planes
        cluster.wait(lambda: statuses(cluster, "probe") == [401, 401], "key-auth on /r")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def add_consumer(cluster: Cluster, name: str, key: str) -> str:
    """A consumer with one key; returns the credential id."""
    admin = cluster.admin
    assert admin.post("/consumers", json={"username": name}).status_code == 201
    cred = admin.post(f"/consumers/{name}/key-auth", json={"key": key})
    assert cred.status_code == 201, cred.text
    credential_id: str = cred.json()["id"]
    return credential_id


def status(proxy: str, key: str) -> int:
    return httpx.get(f"{proxy}/r", headers={"apikey": key}, timeout=5).status_code


def statuses(cluster: Cluster, key: str) -> list[int]:
    return [status(proxy, key) for proxy in cluster.proxies()]


def rejected_everywhere_within(cluster: Cluster, key: str, deadline_s: float) -> float:
    """Seconds until every data plane answers 401 to `key`; fails past `deadline_s`. With Redis,
    the control plane has also replaced the key's record by a tombstone by then."""
    started = time.monotonic()
    while True:
        codes = statuses(cluster, key)
        elapsed = time.monotonic() - started
        if all(code == 401 for code in codes) and redis_revoked(cluster, key):
            return elapsed
        assert all(code in (200, 401) for code in codes), codes
        assert elapsed < deadline_s, f"still {codes} after {elapsed:.2f}s\n{cluster.logs()}"
        time.sleep(0.02)


def redis_revoked(cluster: Cluster, key: str) -> bool:
    return cluster.redis is None or cluster.redis.get(DEFAULT_PREFIX + hash_key(key)) == TOMBSTONE


@pytest.fixture(scope="module", params=["without-redis", "with-redis"])
def cluster(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: str,
    redis_session: RedisServer,
) -> Iterator[Cluster]:
    redis = None
    if request.param == "with-redis":
        redis_session.flush()
        redis = redis_session
    started = start_cluster(tmp_path_factory.mktemp(request.param), upstream, redis)
    yield started
    started.stop()


def test_deleting_a_key_revokes_it_on_every_data_plane_within_a_second(cluster: Cluster) -> None:
    credential_id = add_consumer(cluster, "del-key", "del-key-secret")
    assert statuses(cluster, "del-key-secret") == [200, 200]  # now cached on both
    admin = cluster.admin
    assert admin.delete(f"/key-auths/{credential_id}").status_code == 204
    rejected_everywhere_within(cluster, "del-key-secret", REVOCATION_DEADLINE_S)


def test_rotating_a_key_revokes_the_old_one_within_a_second(cluster: Cluster) -> None:
    credential_id = add_consumer(cluster, "rotate", "rotate-old")
    assert statuses(cluster, "rotate-old") == [200, 200]
    admin = cluster.admin
    rotated = admin.patch(f"/key-auths/{credential_id}", json={"key": "rotate-new"})
    assert rotated.status_code == 200, rotated.text
    rejected_everywhere_within(cluster, "rotate-old", REVOCATION_DEADLINE_S)
    assert statuses(cluster, "rotate-new") == [200, 200]


def test_deleting_a_consumer_revokes_its_keys_within_a_second(cluster: Cluster) -> None:
    add_consumer(cluster, "gone", "gone-secret")
    assert statuses(cluster, "gone-secret") == [200, 200]
    admin = cluster.admin
    assert admin.delete("/consumers/gone").status_code == 204
    rejected_everywhere_within(cluster, "gone-secret", REVOCATION_DEADLINE_S)


@pytest.fixture
def redis_cluster(
    tmp_path: Path, upstream: str, redis_server: RedisServer
) -> Iterator[tuple[Cluster, RedisServer]]:
    started = start_cluster(tmp_path, upstream, redis_server)
    yield started, redis_server
    started.stop()


def test_redis_stopped_mid_run_valid_keys_keep_working(
    redis_cluster: tuple[Cluster, RedisServer],
) -> None:
    cluster, redis = redis_cluster
    add_consumer(cluster, "before", "before-secret")
    assert statuses(cluster, "before-secret") == [200, 200]
    with redis.stopped():
        add_consumer(cluster, "during", "during-secret")  # never cached anywhere
        assert statuses(cluster, "during-secret") == [200, 200]
        assert statuses(cluster, "before-secret") == [200, 200]
        assert statuses(cluster, "wrong-secret") == [401, 401]
        for _ in range(20):  # the breaker keeps every answer fast and correct
            assert statuses(cluster, f"unknown-{_}") == [401, 401]


def test_control_plane_down_keys_in_redis_keep_working(
    redis_cluster: tuple[Cluster, RedisServer],
) -> None:
    cluster, redis = redis_cluster
    add_consumer(cluster, "warm", "warm-secret")  # written through to Redis, never looked up
    deadline = time.monotonic() + 5
    while redis.dbsize() < 2:  # the record and the warm marker
        assert time.monotonic() < deadline, "the control plane did not write through to Redis"
        time.sleep(0.05)
    time.sleep(BYPASS_S)  # past the window in which a changed key is checked with the CP only
    cluster.stop_control_plane()
    assert statuses(cluster, "warm-secret") == [200, 200]
    unknown = httpx.get(f"{cluster.proxies()[0]}/r", headers={"apikey": "unknown"}, timeout=5)
    assert unknown.status_code == 503
    assert unknown.json()["message"] == "Unable to verify the API key right now; try again"


def test_both_down_cached_keys_work_and_unknown_keys_get_503(
    redis_cluster: tuple[Cluster, RedisServer],
) -> None:
    cluster, redis = redis_cluster
    add_consumer(cluster, "cached", "cached-secret")
    assert statuses(cluster, "cached-secret") == [200, 200]
    cluster.stop_control_plane()
    with redis.stopped():
        assert statuses(cluster, "cached-secret") == [200, 200]
        assert statuses(cluster, "never-seen") == [503, 503]
