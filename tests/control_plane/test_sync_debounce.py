"""Bursts are debounced: 1000 quick writes make a handful of snapshots, not 1000."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from control_plane.publisher import Publisher
from control_plane.store import open_store
from gateway.entities import Ref, Route, Service

SERVICE_ID = "00000000-0000-4000-8000-000000000001"


async def test_1000_quick_writes_make_a_handful_of_snapshots(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'lockgate.db'}")
    try:
        store.write(lambda w: w.insert(Service(id=SERVICE_ID, name="s", host="example.com")))
        publisher = Publisher(store.snapshot, debounce_s=0.05, max_delay_s=0.5)
        await publisher.start()
        assert (publisher.builds, publisher.published) == (1, 1)

        def burst() -> float:
            started = time.monotonic()
            for i in range(1000):
                route = Route(name=f"r{i}", paths=[f"/r{i}"], service=Ref(id=SERVICE_ID))
                _, event = store.write(lambda w, route=route: w.insert(route))  # type: ignore[misc]
                assert event is not None
                publisher.notify_threadsafe(event.key_hashes, event.consumer_ids, event.revision)
            return time.monotonic() - started

        seconds = await asyncio.to_thread(burst)
        deadline = time.monotonic() + 10
        while publisher.current is None or len(publisher.current.routes) < 1000:
            assert time.monotonic() < deadline, "the last write never made it into a snapshot"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # nothing more is coming
        builds = publisher.builds - 1
        # At most one build per 0.5 s during the burst (max_delay_s), plus the trailing one:
        # on this machine 1000 writes take 1-3 s, so a handful of builds.
        assert 1 <= builds <= int(seconds / 0.5) + 2, (builds, seconds)
        assert builds <= 50, (builds, seconds)
        assert publisher.published - 1 == builds
        assert publisher.current.version == store.revision()
        print(f"1000 writes in {seconds:.2f} s -> {builds} snapshot builds")
        await publisher.close()
    finally:
        store.close()
