"""Smoke run of bench/deck_sync.py at a tiny size: it starts a real control plane, syncs,
checks the no-op resync and pages, and writes its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_at_smoke_size(tmp_path: Path) -> None:
    output = tmp_path / "deck_sync.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "deck_sync.py"),
            "--database",
            "sqlite",
            "--services",
            "10",
            "--consumers",
            "50",
            "--repeats",
            "1",
            "--no-cli",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    [result] = report["results"]
    assert result["database"] == "sqlite"
    assert result["entities"] == 10 * 3 + 50 * 2
    assert result["sync_s"] > 0 and result["peak_rss_mb"] >= result["baseline_rss_mb"] > 0
    assert result["services_page"]["median_ms"] > 0
    assert "sqlite" in done.stdout and "sync s" in done.stdout
