"""Fixtures of the fault suite: the fake OpenAI upstream and a per-test process cluster (its
processes' logs are printed at the end, which pytest shows when the test fails)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sync_procs import Cluster, cluster_at
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.walkthrough import UPSTREAM_KEY


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """The walkthrough's model, in this process (tests look at what reached it): a fake
    OpenAI that wants the upstream key."""
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Processes on free loopback ports, on a SQLite database in `tmp_path`."""
    with cluster_at(tmp_path) as procs:
        yield procs
