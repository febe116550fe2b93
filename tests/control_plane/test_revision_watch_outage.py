"""The revision poller survives a database outage and logs it once, not on every poll."""

from __future__ import annotations

import asyncio
import logging

import pytest

from control_plane.publisher import Publisher
from gateway.snapshot import Snapshot


async def test_outage_is_logged_once_and_the_recovery_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reads = 0

    def revision() -> int:
        nonlocal reads
        reads += 1
        if reads <= 20:
            raise ConnectionError("database is down")
        return 0

    publisher = Publisher(lambda: Snapshot.create(0), on_snapshot=lambda s: None)
    await publisher.start()
    caplog.set_level(logging.INFO, logger="lockgate.cp.publisher")
    watcher = asyncio.create_task(publisher.watch_revision(revision, 0.001))
    try:
        for _ in range(2000):
            if reads > 25:
                break
            await asyncio.sleep(0.005)
        assert reads > 25
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await publisher.close()
    records = [r for r in caplog.records if r.name == "lockgate.cp.publisher"]
    failures = [r for r in records if "reading the store revision failed" in r.getMessage()]
    recoveries = [r for r in records if "the store answers again" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert len(recoveries) == 1
