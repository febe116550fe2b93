"""Smoke test of the proxy benchmark's report (bench/proxybench): a results document becomes
docs-style markdown with the targets judged, and the charts are written. No benchmark runs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module(name: str) -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _wrk_run(rps: float, p50: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {
        "requests": int(rps * 10),
        "seconds": 10.0,
        "rps": rps,
        "errors": errors,
        "p50_ms": p50,
        "p90_ms": p50,
        "p99_ms": p99,
        "p999_ms": p99,
        "mean_ms": p50,
        "connections": 32,
        "think_ms": 0,
    }


def _results() -> dict[str, Any]:
    def contender(rps: float, ratio: float) -> dict[str, Any]:
        run = _wrk_run(rps, 1.0, 3.0)
        return {"runs": [run], "median": run, "ratio_to_nginx": ratio, "cpu_us_per_request": 50.0}

    throughput = {
        "direct": contender(40000, 1.6),
        "nginx": contender(25000, 1.0),
        "lg1-pipeline": contender(8000, 0.32),
        "lg1-keyauth": contender(9000, 0.36),
        "litellm": contender(80, 0.0032),
    }
    fixed = {
        "lg1-pipeline": {
            "rate_offered": 4000.0,
            "runs": [_wrk_run(3900, 0.6, 2.0)],
            "median": _wrk_run(3900, 0.6, 2.0),
            "direct_median": _wrk_run(3900, 0.1, 0.5),
            "added_p50_ms": 0.5,
            "added_p99_ms": 1.5,
        }
    }
    return {
        "meta": {
            "date": "2026-01-01 00:00 UTC",
            "machine": {"cpu": "test cpu"},
            "versions": {"python": "3.11"},
            "load_before": [1, 1, 1],
            "load_after": [1, 1, 1],
            "commands": ["python bench/run.py"],
        },
        "throughput": throughput,
        "fixed_rate": fixed,
        "streaming": {
            "nginx": {
                "ttft_p50_ms": 0.5,
                "ttft_max_ms": 0.9,
                "tokens_per_s": 1e5,
                "streams": 3,
                "tokens": 200,
            }
        },
        "memory": {"10k_routes": {"routes": 10004, "rss_mb": 120.0, "start_and_sync_s": 9.0}},
        "other_benchmarks": {"sync": {"samples_ms": list(range(50)), "p50_ms": 66.6}},
    }


def test_report_judges_targets_and_draws_charts(tmp_path: Path) -> None:
    run = _module("run")
    report = _module("proxybench.report")
    results = _results()
    results["targets"] = run._targets(results)
    judged = {row["name"]: row["met"] for row in results["targets"]}
    assert judged["Lockgate 1 DP: walkthrough pipeline: ratio to nginx req/s"] is True
    assert judged["Lockgate 1 DP: key-auth only: ratio to nginx req/s"] is False
    assert judged["data plane RSS with 10k routes"] is True

    images = report.charts(results, tmp_path / "benchmarks")
    text = report.markdown(results, images, "benchmarks")
    assert sorted(p.name for p in (tmp_path / "benchmarks").iterdir()) == sorted(images)
    assert all((tmp_path / "benchmarks" / i).read_bytes()[:4] == b"\x89PNG" for i in images)
    assert (
        "| Lockgate 1 DP: key-auth only: ratio to nginx req/s | 0.360 | >= 0.4 | **no** |" in text
    )
    assert "| LiteLLM proxy (1 worker, master key) | 80 |" in text
    assert "[50 samples]" in text  # raw samples of other benchmarks are summarised
    assert "![requests per second](benchmarks/throughput.png)" in text


def test_wrk_script_posts_the_body_and_paces_fixed_rate_runs(tmp_path: Path) -> None:
    wrk = _module("proxybench.wrk")
    request = wrk.Request("http://127.0.0.1:1/x", '{"a": "]]"}', (("apikey", "k"),))
    closed = wrk.script(tmp_path / "a.lua", request).read_text()
    paced = wrk.script(tmp_path / "b.lua", request, think_ms=10).read_text()
    assert 'wrk.method = "POST"' in closed
    assert 'wrk.body = [==[{"a": "]]"}]==]' in closed
    assert "wrk.headers[ [==[apikey]==] ] = [==[k]==]" in closed
    assert "delay" not in closed
    assert "function delay() return math.random(0, 20) end" in paced
    assert wrk.connections_for_rate(5000) == 50
    assert wrk.connections_for_rate(40) == 1
