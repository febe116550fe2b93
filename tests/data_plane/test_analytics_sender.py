"""The analytics sender when no control plane answers: minutes stay pending, one clear warning
per outage, an error naming each minute dropped when the buffer is full, and `close` says what
was left undelivered. (Delivery and resend against a real server: tests/control_plane/
test_analytics_chain.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from data_plane.analytics_sender import AnalyticsSender
from data_plane.analytics_window import GroupKey, MinuteWindow
from data_plane.control_planes import open_channel
from tests.control_plane.sync_harness import free_port, make_tls

T0 = 1_700_000_040.0
KEY: GroupKey = ("r", "r", "s", "s", "", "", 200, "", "", "service")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def test_unreachable_control_plane_keeps_minutes_and_drops_only_beyond_the_bound(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lockgate.analytics")
    channel = open_channel(f"127.0.0.1:{free_port()}", make_tls(tmp_path))  # nobody listens
    clock = Clock()
    window = MinuteWindow(clock=clock, max_minutes=3)
    sender = AnalyticsSender(window, lambda: channel, "node-1", timeout_s=0.3)
    try:
        for minute in range(2):
            for _ in range(minute + 1):
                window.add(KEY, 5.0)
            clock.now += 60
            assert not await sender.flush()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # one per outage, not one per attempt
        assert "could not report to the control plane (UNAVAILABLE); keeping 1 minutes" in (
            warnings[0].getMessage()
        )
        assert window.unsent_requests() == 3
        for _ in range(2):  # two more minutes: the bound (3) drops the oldest
            window.add(KEY, 5.0)
            clock.now += 60
        assert not await sender.flush()
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [
            "analytics: dropped minute 2023-11-14T22:14:00Z (1 requests) unsent: no control "
            "plane acknowledged it before the buffer filled"
        ]
        assert window.dropped_requests == 1
        assert window.unsent_requests() == 4
        await sender.close(timeout_s=1)
        assert caplog.records[-1].getMessage() == (
            "analytics: 4 counted requests not delivered at shutdown"
        )
    finally:
        await channel.close(grace=None)
