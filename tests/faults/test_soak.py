"""The short soak (CI): a bounded run at a fixed rate through two data planes.

One control plane and two data planes (real processes) serve the walkthrough's pipeline
(pre-function -> key-auth -> ai-proxy-advanced to a fake OpenAI) to 50 consumers' keys. After a
warm-up, the load runs at a fixed rate while every process's RSS and open file descriptors are
sampled from /proc. Asserted (`soak_checks`): no failed request; RSS growth after the warm-up
under 5% in every process; no file-descriptor growth beyond what connection pools may keep.

The rate is fixed at SOAK_RATE, not "half the maximum": the maximum (9,100 req/s for two data
planes, docs/benchmarks.md, measured with wrk and pinned cores) is not reachable by this
Python load generator on a shared CI box, and a rate the box cannot hold would measure the box.
`bench/soak.py` runs the same code for longer and at a chosen rate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.soak import run_soak, soak_checks

pytestmark = pytest.mark.e2e

SOAK_RATE = 50.0
"""Requests per second over both data planes."""
WORKERS = 4
"""Client threads (requests in flight at most)."""
KEYS = 20
WARMUP_S = 10.0
MEASURED_S = 60.0


def test_soak_short_bounded_run(tmp_path: Path) -> None:
    result = run_soak(
        tmp_path,
        rate_per_s=SOAK_RATE,
        warmup_s=WARMUP_S,
        duration_s=MEASURED_S,
        keys=KEYS,
        workers=WORKERS,
        progress=print,
    )
    print(result.summary())
    assert set(result.load.statuses) == {"200"}, result.load.summary()
    checks = soak_checks(result)
    for what, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'} {what}")
    assert all(passed for _, passed in checks), [what for what, passed in checks if not passed]
