"""The snapshot cache file: atomic writes, corrupt files ignored, and a node that starts with the
control plane down serves its cached config."""

from __future__ import annotations

import asyncio
import gzip
import logging
from pathlib import Path

import pytest

from data_plane.snapshot_cache import SnapshotCache
from gateway.entities import Ref, Route, Service
from gateway.snapshot import Snapshot
from tests.control_plane.sync_harness import (
    FakeStore,
    eventually,
    free_port,
    make_node,
    make_tls,
    start_cluster,
)


def sample(version: int = 3) -> Snapshot:
    service = Service(name="s", host="example.com")
    route = Route(name="cached", paths=["/cached"], service=Ref(id=service.id))
    return Snapshot.create(version, (service,), (route,))


def test_save_then_load(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path / "dp" / "snapshot.cache")
    assert cache.load() is None
    snapshot = sample()
    cache.save(snapshot)
    loaded = cache.load()
    assert loaded is not None
    assert (loaded.version, loaded.hash, loaded.routes) == (3, snapshot.hash, snapshot.routes)
    cache.save(sample(4), gzip.compress(sample(4).encode()))
    again = cache.load()
    assert again is not None and again.version == 4
    assert [p.name for p in cache.path.parent.iterdir()] == ["snapshot.cache"]  # no temp files


@pytest.mark.parametrize(
    "content",
    [b"not gzip", gzip.compress(b"{not json"), gzip.compress(sample().encode()[:-40])],
)
def test_corrupt_file_is_ignored_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "snapshot.cache"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="lockgate.dp.cache"):
        assert SnapshotCache(path).load() is None
    assert "ignoring the corrupt snapshot cache" in caplog.text


def test_tampered_content_fails_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.cache"
    path.write_bytes(gzip.compress(sample().encode().replace(b"/cached", b"/evil")))
    assert SnapshotCache(path).load() is None


async def test_node_restarted_with_the_control_plane_down_serves_its_cache(
    tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path)
    cache = tmp_path / "node.cache"
    store = FakeStore()
    service = Service(name="s", host="example.com")
    store.services.append(service)
    store.routes.append(Route(name="from-cp", paths=["/x"], service=Ref(id=service.id)))
    cluster = await start_cluster(tls, store)
    node = make_node([cluster.address], tls, cache=cache).start()
    try:
        await eventually(lambda: cluster.status() == "in_sync")
        await eventually(lambda: cache.exists())
    finally:
        await node.stop()
        await cluster.close()

    # The control plane is gone; a new node process (fresh state) starts from the cache.
    down = f"127.0.0.1:{free_port()}"
    restarted = make_node([down], tls, cache=cache)
    try:
        assert await restarted.client.restore()
        assert restarted.routes() == ["from-cp"]
        assert restarted.client.hash == store.snapshot().hash
        restarted.start()  # keeps trying the dead address while serving
        await asyncio.sleep(0.5)
        assert restarted.client.received == {}
        assert restarted.routes() == ["from-cp"]

        # The control plane comes back on that address with the same config: the node is
        # told it is current and does not recompile.
        back = await start_cluster(tls, store, address=down)
        try:
            await eventually(lambda: back.status() == "in_sync", timeout=10)
            # in_sync is recorded from the node's Hello, before the "current" delta reaches it
            await eventually(lambda: restarted.client.received != {}, timeout=10)
            assert restarted.client.received == {"delta": 1}
            assert restarted.compiled == [store.version]  # only the restore compiled
        finally:
            await back.close()
    finally:
        await restarted.stop()


async def test_corrupt_cache_means_waiting_for_the_control_plane(tmp_path: Path) -> None:
    cache = tmp_path / "node.cache"
    cache.write_bytes(b"garbage")
    node = make_node([f"127.0.0.1:{free_port()}"], make_tls(tmp_path), cache=cache)
    try:
        assert not await node.client.restore()
        assert node.holder.current is None
    finally:
        await node.stop()
